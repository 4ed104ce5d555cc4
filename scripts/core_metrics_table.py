"""Snakemake adapter: gather every SAE × eval-set evaluation into results/tables/core_metrics.{csv,md}."""

from saeflow.runtime import redirect_to, run_main
from saeflow.tables import core_metrics_table, write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    df = core_metrics_table(snakemake.input.evals)
    write_table(
        df,
        snakemake.output.csv,
        snakemake.output.md,
        preamble="# Core metrics (spliced at the SAE's layer, held-out text)\n\n",
    )


run_main(main)
