"""Snakemake adapter: store the residual stream of config model.layer for one text set."""

from pathlib import Path

from saeflow.activations import extract_activations
from saeflow.io import read_jsonl
from saeflow.models.causal_lm import load_lm
from saeflow.runtime import redirect_to, run_main, set_threads

snakemake = globals()["snakemake"]


def main() -> None:
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    model, extraction = snakemake.params.model, snakemake.params.extraction
    lm = load_lm(Path(snakemake.input.model).parent, dtype=model["dtype"], device=snakemake.params.device)
    extract_activations(
        lm,
        read_jsonl(snakemake.input.texts),
        model["layer"],
        Path(snakemake.output.manifest).parent,
        max_tokens=extraction["max_tokens"],
        batch_size=extraction["batch_size"],
        max_length=model["max_length"],
        shard_rows=extraction["shard_rows"],
        dtype=extraction["dtype"],
    )


run_main(main)
