"""Snakemake adapter: the SAE training set (SASRec's scoring state at every position of every history)."""

from pathlib import Path

from saeflow.models.sasrec import load_sasrec
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.studies.recsys.pipeline import load_data, write_activations

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    model = load_sasrec(Path(snakemake.input.weights).parent)
    write_activations(model, load_data(snakemake.params.data), Path(snakemake.output.manifest).parent)


run_main(main)
