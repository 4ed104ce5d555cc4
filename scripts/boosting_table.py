"""Snakemake adapter: the boosting table (base vs base + residual vs full finetune per subdomain, and
stacked)."""

from saeflow.io import read_json
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.boosting.report import boosting_table
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    e = snakemake.params.entries
    evals = {name: {es: read_json(path) for es, path in paths.items()} for name, paths in e["evals"].items()}
    df = boosting_table(
        evals,
        base=e["base"],
        residuals=e["residuals"],
        finetunes=e["finetunes"],
        stacked=e["stacked"],
        general=e["general"],
    )
    write_table(df, snakemake.output.csv, snakemake.output.md)


run_main(main)
