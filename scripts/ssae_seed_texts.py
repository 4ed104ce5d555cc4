"""Snakemake adapter: a subdomain's seeds as a text set (saeflow.studies.ssae.specs.seed_documents), whose
activations TracIn's seed gradient is taken on."""

from saeflow.io import read_jsonl, write_jsonl
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.ssae.specs import seed_documents

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p = snakemake.params
    write_jsonl(
        snakemake.output.texts, seed_documents(list(read_jsonl(snakemake.input.domain)), p.seeds, p.queries)
    )


run_main(main)
