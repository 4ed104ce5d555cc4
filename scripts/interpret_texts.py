"""Snakemake adapter: the interpret study's held-out text set (the corpora's held-out splits, interleaved)."""

from saeflow.runtime import redirect_to, run_main
from saeflow.studies.interpret.analysis import write_contexts_texts

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    n = write_contexts_texts(list(snakemake.input.heldout), snakemake.output.texts)
    print(f"{n} documents")


run_main(main)
