"""Snakemake adapter: residue activations of one protein split (and its stored, row-aligned records)."""

from pathlib import Path

from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.studies.protein.pipeline import extract_split, load_protein_model, read_records

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    model = load_protein_model(p.model, p.source, p.device)
    ex = p.extraction
    extract_split(
        model,
        read_records(snakemake.input.records),
        int(p.model["layer"]),
        Path(snakemake.output.manifest).parent,
        snakemake.output.records,
        max_tokens=int(ex["max_tokens"]),
        batch_size=int(ex["batch_size"]),
        shard_rows=int(ex["shard_rows"]),
        dtype=ex["dtype"],
    )


run_main(main)
