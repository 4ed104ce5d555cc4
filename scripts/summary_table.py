"""Snakemake adapter: gather every table of the run into results/tables/summary.md beside the papers'
numbers."""

from saeflow.runtime import redirect_to, run_main
from saeflow.summary import write_summary

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    write_summary(snakemake.output.md, snakemake.input.tables, snakemake.input.figures)


run_main(main)
