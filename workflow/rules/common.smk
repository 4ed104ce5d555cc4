# Shared helpers: paths, asset/model inputs, the SAE registry and run parameters.
from pathlib import Path

import saeflow
from saeflow.assets import asset_name, resolve_uri
from saeflow.experiments import sae_specs

RESULTS = config["results_dir"]
RESOURCES = config["resources_dir"]
SAEFLOW_VERSION = saeflow.__version__
MODEL = config["model"]["name"]
LAYER = config["model"]["layer"]
ACTS = f"{RESULTS}/activations/{MODEL}/L{LAYER}"
SAES = sae_specs(config)


wildcard_constraints:
    asset=r"[A-Za-z0-9_\-]+",
    textset=r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+",
    sae=r"[A-Za-z0-9_\-.]+",
    eval_set=r"[A-Za-z0-9_\-]+",


def asset_marker(name):
    return f"{RESOURCES}/assets/{name}/asset.json"


def uri_inputs(uri):
    """Files a rule must wait for before it can read `uri` (an asset, a local path, or nothing for a hub id)."""
    name = asset_name(uri)
    if name is not None:
        return [asset_marker(name)]
    return [uri] if Path(uri).exists() else []


def resolve(uri):
    return resolve_uri(uri, RESOURCES)


def model_dir():
    return f"{RESOURCES}/models/{MODEL}"


def model_marker():
    return f"{model_dir()}/prepared.json"


def texts(textset):
    return f"{RESULTS}/texts/{textset}.jsonl"


def acts_manifest(textset):
    return f"{ACTS}/{textset}/manifest.json"


def sae_dir(sae):
    return f"{RESULTS}/sae/{sae}"


def sae_weights(sae):
    return f"{sae_dir(sae)}/sae_weights.safetensors"


def sae_spec(sae):
    try:
        return SAES[sae]
    except KeyError:
        raise ValueError(f"unknown SAE '{sae}'; configured: {', '.join(sorted(SAES))}")


def eval_json(sae, eval_set):
    return f"{RESULTS}/eval/{sae}/{eval_set}.json"


def baseline_json(eval_set):
    return f"{RESULTS}/eval/_baseline/{MODEL}_L{LAYER}/{eval_set}.json"


def model_params():
    return {k: config["model"][k] for k in ("name", "source", "layer", "max_length", "dtype")}


# Each stage's .smk appends the final outputs it contributes; `rule all` asks for all of them.
TARGETS = []


def all_targets():
    return TARGETS
