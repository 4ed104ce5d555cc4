# Shared helpers: paths, asset/model inputs, the SAE registry and run parameters.
from pathlib import Path

import saeflow
from saeflow.assets import asset_name, resolve_uri
from saeflow.experiments import sae_specs
from saeflow.bias_specs import study_saes, study_tag

RESULTS = config["results_dir"]
RESOURCES = config["resources_dir"]
SAEFLOW_VERSION = saeflow.__version__
MODEL = config["model"]["name"]
LAYER = config["model"]["layer"]
ACTS = f"{RESULTS}/activations/{MODEL}/L{LAYER}"
SAES = sae_specs(config)
# Threads of the multi-threaded rules: every core of a local run. Use this, not workflow.cores, which is an
# error when Snakemake runs without --cores (`snakemake --report`, a cluster executor); there the profile's
# set-threads / max-threads decide.
MAX_THREADS = workflow.resource_settings.cores or 1


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

# Stages that make their own text sets register functions textset -> extraction token budget (or None to pass);
# extraction_params (activations.smk) uses the first budget a function returns, else the train/heldout budgets.
TEXTSET_BUDGETS = []


def all_targets():
    return TARGETS


# --- Bias in Bios (bias_in_bios.smk) ---------------------------------------------------------------------------
BIB_CFG = config["bias_in_bios"]
BIB_TAG = study_tag(config)  # "" by default; another tag runs a second study beside it, sharing the SAEs
BIB = f"{RESULTS}/bias_in_bios{BIB_TAG}"
BIB_ACTS = f"{BIB}/acts/{MODEL}_L{LAYER}"
BIB_SAES = study_saes(config, SAES) if BIB_CFG["enabled"] else []  # [(label, registry name)]


def bib_params():
    """Everything that decides the study's numbers (a change reruns the affected jobs)."""
    return {k: v for k, v in BIB_CFG.items() if k not in ("saes", "ssae", "enabled")}


def bib_set(name):
    return f"{BIB}/sets/{name}.jsonl"


def bib_pooled(name):
    return f"{BIB_ACTS}/{name}/pooled.safetensors"


def bib_latents(sae, name):
    return f"{BIB}/latents/{sae}/{name}.safetensors"


def bib_label(sae):
    return {name: label for label, name in BIB_SAES}[sae]


def bib_shift_inputs(w):
    inputs = {"baseline": f"{BIB}/baseline.json", "weights": sae_weights(w.sae)}
    for name in ("ambiguous", "test", "oracle"):
        inputs[name] = bib_set(name)
        inputs[f"{name}_x"] = bib_pooled(name)
        inputs[f"{name}_f"] = bib_latents(w.sae, name)
    return inputs


def core_eval_jsons():
    """Every SAE x eval set evaluation; an SAE may name its own eval sets (an SSAE: its subdomain + general)."""
    return [
        eval_json(sae, es)
        for sae in SAES
        for es in SAES[sae].get("eval_sets") or config["evaluation"]["eval_sets"]
    ]
