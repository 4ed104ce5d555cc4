"""Snakemake adapter: build one corpus's train/heldout JSONL and stats (see saeflow.corpus)."""

from saeflow.corpus import build_corpus, write_corpus
from saeflow.runtime import redirect_to, run_main

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
redirect_to(snakemake.log[0])


def main() -> None:
    split = build_corpus(
        snakemake.params.spec,
        seed=snakemake.params.seed,
        resources_dir=snakemake.params.resources_dir,
        name=snakemake.wildcards.corpus,
    )
    write_corpus(split, snakemake.output.train, snakemake.output.heldout, snakemake.output.stats)


run_main(main)
