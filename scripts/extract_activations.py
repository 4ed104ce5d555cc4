"""Snakemake adapter: store the residual stream of config model.layer for one text set."""

from pathlib import Path

from saeflow.activations import extract_activations
from saeflow.config import check_layers, model_layer_count
from saeflow.io import read_jsonl
from saeflow.models.causal_lm import load_lm
from saeflow.runtime import check_device, redirect_to, run_main, set_threads

snakemake = globals()["snakemake"]


def main() -> None:
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    model, extraction = snakemake.params.model, snakemake.params.extraction
    model_dir = Path(snakemake.input.model).parent
    # before any work: the layer exists (the prepared model says how many it has) and the device is there
    known = model_layer_count(model_dir)
    if known is not None:
        check_layers({"model.layer": model["layer"]}, known[0], model["name"], known[1])
    check_device(snakemake.params.device, visible=True)
    lm = load_lm(model_dir, dtype=extraction["compute_dtype"], device=snakemake.params.device)
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
