"""Snakemake adapter: concept confidence per unit set (SAEs vs neurons vs untrained SAE) and its histogram."""

from pathlib import Path

import pandas as pd

from saeflow.runtime import redirect_to, run_main
from saeflow.studies.recsys.pipeline import concepts_table, confidence_figure
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    kinds = snakemake.params.units
    dicts = {}
    for path in snakemake.input:
        units = Path(path).parent.name
        dicts[units] = (kinds[units], pd.read_csv(path, keep_default_na=False, na_values=[""]))
    write_table(concepts_table(dicts), snakemake.output.csv, snakemake.output.md)
    confidence_figure(dicts, snakemake.output.hist)


run_main(main)
