"""Snakemake adapter: turn config model.source (GGUF file, local HF dir or hub id) into a plain HF dir."""

from pathlib import Path

from saeflow.models.causal_lm import prepare_model
from saeflow.runtime import redirect_to, run_main, set_threads

snakemake = globals()["snakemake"]


def main() -> None:
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    prepare_model(
        snakemake.params.source, Path(snakemake.output.marker).parent, dtype=snakemake.params.model["dtype"]
    )


run_main(main)
