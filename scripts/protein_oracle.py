"""Snakemake adapter: the H/E/C oracle that scores generated proteins (trained on the stored training chains)."""

import pickle

from saeflow.io import atomic_path
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.protein.pipeline import fit_oracle, read_records

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    records = {s: read_records(snakemake.input[s]) for s in ("train", "val")}
    oracle = fit_oracle(records, seed=int(snakemake.params.seed))
    print(f"oracle held-out 3-state accuracy: {oracle.accuracy:.3f}")
    with atomic_path(snakemake.output.oracle) as tmp:
        tmp.write_bytes(pickle.dumps(oracle))


run_main(main)
