"""Snakemake adapter: turn config model.source (GGUF file, local HF dir or hub id) into a plain HF dir.

Every layer the run reads from this model (model.layer and each SAE's own layer) must exist: checked from the
source's own config (GGUF header, config.json) before the conversion, and from the prepared model after it
(a hub model), in which case the prepared dir is removed again so nothing complete-looking is left behind.
"""

import shutil
from pathlib import Path

from saeflow.config import check_layers, lm_layers, model_layer_count
from saeflow.errors import ConfigError
from saeflow.io import read_json
from saeflow.models.causal_lm import prepare_model
from saeflow.registry import sae_specs
from saeflow.runtime import redirect_to, run_main, set_threads

snakemake = globals()["snakemake"]


def main() -> None:
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    model, source = snakemake.params.model, snakemake.params.source
    layers = lm_layers(
        {**snakemake.config, "model": {**snakemake.config["model"], **model}}, sae_specs(snakemake.config)
    )
    known = model_layer_count(source)
    if known is not None:  # fail fast, before a de-quantisation or a copy
        check_layers(layers, known[0], model["name"], known[1])
    out_dir = Path(snakemake.output.marker).parent
    marker = prepare_model(source, out_dir, dtype=model["dtype"])
    try:
        check_layers(layers, int(read_json(marker)["n_layers"]), model["name"], str(marker))
    except ConfigError:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


run_main(main)
