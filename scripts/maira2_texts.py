"""Snakemake adapter: the radlabels reports as the study's corpus (radlabels.reports JSONL)."""

from saeflow.io import write_jsonl
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.maira2.data import read_radlabels

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    data = read_radlabels(snakemake.params.asset_dir)
    n = write_jsonl(snakemake.output.texts, data.documents())
    print(f"{n} reports, {len(data.findings)} findings")


run_main(main)
