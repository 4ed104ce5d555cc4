"""Snakemake adapter: the protein study's chains, split train/val/test by the seeded hash of their ids."""

from saeflow.runtime import redirect_to, run_main
from saeflow.studies.protein.pipeline import read_protein_records, split_chains, write_records

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    data = snakemake.params.data
    records = read_protein_records(data, snakemake.params.source)
    splits = split_chains(records, int(data.get("split_seed", 0)), data.get("fractions", (0.8, 0.1, 0.1)))
    for split, recs in splits.items():
        write_records(snakemake.output[split], recs)
        print(f"{split}: {len(recs)} chains, {sum(len(r.sequence) for r in recs)} residues")


run_main(main)
