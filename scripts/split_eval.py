"""Snakemake adapter: one eval set's row of an SAE's evaluations file (input.json, scripts/evaluate.py), as
the per-eval-set JSON the tables read."""

from saeflow.io import read_json, write_json
from saeflow.runtime import redirect_to, run_main

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    evals = read_json(snakemake.input.json)["evals"]
    write_json(snakemake.output.json, evals[snakemake.wildcards.eval_set])


run_main(main)
