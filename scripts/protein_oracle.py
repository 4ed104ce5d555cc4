"""Snakemake adapter: the H/E/C oracle that scores generated proteins (trained on the stored training
chains)."""

from saeflow.io import write_json
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.protein.pipeline import fit_oracle, read_records

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    records = {s: read_records(snakemake.input[s]) for s in ("train", "val")}
    oracle = fit_oracle(records, seed=int(snakemake.params.seed))
    print(f"oracle held-out 3-state accuracy: {oracle.accuracy:.3f}")
    write_json(snakemake.output.oracle, oracle.to_dict())


run_main(main)
