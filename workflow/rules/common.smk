# Shared helpers: paths, asset/model inputs, the SAE registry and run parameters. Every Python function of the
# workflow lives here, so that the other .smk files hold rules alone (`snakemake --lint`); pure logic goes to
# src/saeflow.
import os
from pathlib import Path

import saeflow
from saeflow.assets import asset_name, resolve_uri
from saeflow.config import config_entry
from saeflow.experiments import extraction_settings, sae_specs
from saeflow.bias_specs import study_saes, study_tag
from saeflow.ssae import report_rows, selection_textset, ssae_subdomains, ssae_variants

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
# Spliced evaluations run single-threaded: their many small ops scale poorly across threads, so two 1-thread
# jobs side by side finish more evaluations per minute than one 2-thread job (measured: 294 vs 452 tok/s for
# one job at 1 vs 2 threads, i.e. 588 vs 452 tok/s for the pair).
EVAL_THREADS = 1


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


# --- Assets and corpora (assets.smk, corpus.smk) ---------------------------------------------------------------
def asset_params(name):
    """The asset's spec from config (a plain dict, so a changed pin re-fetches the asset)."""
    return config_entry(config, "assets", name, noun="asset")


def asset_resources_dir(wildcards, output):
    """The resources directory, read back from fetch_asset's output (<resources>/assets/<name>/asset.json) rather
    than hardcoded: a path prefix inferred from the job's own files also holds where jobs see another root."""
    return os.path.dirname(os.path.dirname(os.path.dirname(output.marker)))


def corpus_params(name):
    """The corpus spec from config (a plain dict: a changed source or filter rebuilds the corpus)."""
    return config_entry(config, "corpora", name, noun="corpus")


def corpus_inputs(name):
    """Asset markers and local files the corpus reads (hub datasets add nothing)."""
    files = []
    for source in corpus_params(name)["sources"]:
        path = source["path"] if isinstance(source, dict) else source
        files.extend(f for f in uri_inputs(path) if f not in files)
    return files


def corpus_stats(corpus):
    return f"{RESULTS}/texts/{corpus}.stats.json"


# --- Activations, training, evaluation (activations.smk, train.smk, evaluate.smk) ------------------------------
def extraction_params(textset):
    """Token budget and storage settings of one text set (saeflow.experiments.extraction_settings)."""
    return extraction_settings(config, textset, TEXTSET_BUDGETS)


def model_dir_of(wildcards, input):
    """The prepared model's directory, inferred from the job's `model` input (its prepared.json marker)."""
    return os.path.dirname(input.model)


def train_inputs(w):
    """The SAE's activations, plus the SAE it starts from (init_from) or, for a residual SAE, the frozen base it
    reads (extra.base, a saved SAE directory)."""
    spec = sae_spec(w.sae)
    inputs = {"acts": acts_manifest(spec["train_on"])}
    if spec.get("init_from"):
        inputs["parent"] = f"{sae_dir(spec['init_from'])}/cfg.json"
    base = (spec.get("extra") or {}).get("base")
    if base:
        inputs["base_cfg"] = f"{base}/cfg.json"
        inputs["base_weights"] = f"{base}/sae_weights.safetensors"
    return inputs


# --- Specialised SAEs (ssae.smk) -------------------------------------------------------------------------------
SSAE = config["ssae"]
SSAE_SUBDOMAINS = ssae_subdomains(config)
SSAE_VARIANTS = ssae_variants(config)
SSAE_GENERAL = SSAE["general_corpus"]
SSAE_DIR = f"{RESULTS}/ssae"
EMBEDDER = SSAE["retrieval"]["embedder"]
EMBED_DIR = f"{RESULTS}/retrieval/{EMBEDDER['name']}"


def embedding_cache(corpus):
    """<prefix>.npy (embeddings), <prefix>.faiss (index), <prefix>.json (ids + stats) of one corpus."""
    return f"{EMBED_DIR}/{corpus}"


def embedder_source(name):
    if name != EMBEDDER["name"]:
        raise ValueError(
            f"embedder '{name}' is not configured (ssae.retrieval.embedder.name is '{EMBEDDER['name']}')"
        )
    return resolve(EMBEDDER["source"])


def selection_json(subdomain, method):
    return f"{SSAE_DIR}/selection/{selection_textset(subdomain, method)}.json"


def concepts_json(sae, subdomain):
    return f"{SSAE_DIR}/concepts/{sae}/{subdomain}.json"


def token_freq(corpus):
    return f"{SSAE_DIR}/token_freq/{MODEL}/{corpus}.npy"


def ssae_report_entries():
    """One plain dict per table row (saeflow.ssae.report_rows), with the paths of its JSON inputs."""
    rows = report_rows(config, SAES)
    for v in rows:
        v["paths"] = {
            "domain_eval": eval_json(v["name"], v["subdomain"]),
            "general_eval": eval_json(v["name"], SSAE_GENERAL),
            "concepts": concepts_json(v["name"], v["subdomain"]),
        }
        if v["selection"] != "gsae":
            v["paths"]["selection"] = selection_json(v["subdomain"], v["selection"])
    return rows


def ssae_selection_jsons():
    """{subdomain: {method: selection JSON}} of the retrieval methods (the `domain` reference is no retrieval)."""
    return {
        s: {m: selection_json(s, m) for m in SSAE["selections"] if m != "domain"} for s in SSAE_SUBDOMAINS
    }


def ssae_report_inputs(wildcards):
    files = {p for entry in ssae_report_entries() for p in entry["paths"].values()}
    files |= {p for methods in ssae_selection_jsons().values() for p in methods.values()}
    return sorted(files)


def select_inputs(w):
    inputs = {
        "general": texts(f"{SSAE_GENERAL}.train"),
        "domain": texts(f"{w.subdomain}.train"),
        "model": model_marker(),
    }
    if w.method == "dense":
        for name, corpus in (("general", SSAE_GENERAL), ("domain", w.subdomain)):
            for ext in ("npy", "faiss", "json"):
                inputs[f"{name}_{ext}"] = f"{embedding_cache(corpus)}.{ext}"
        inputs["embedder"] = uri_inputs(EMBEDDER["source"])
    return inputs


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


# --- Architectures and boosting (architectures.smk) ------------------------------------------------------------
from functools import partial

from saeflow.arch_specs import (
    STACKED,
    architecture_saes,
    boosting_base,
    boosting_eval_sets,
    boosting_general,
    boosting_subdomains,
    boosting_train_budget,
    finetune_name,
    residual_name,
)

ARCH_CFG = config["architectures"]
ARCH_DIR = f"{RESULTS}/architectures"
ARCH_SAES = architecture_saes(config)  # {architecture label: registry name}; {} when disabled
BOOST_SUBDOMAINS = boosting_subdomains(config)  # [] when disabled
BOOST_DIR = f"{RESULTS}/boosting"
RESIDUAL_SAES = [residual_name(s) for s in BOOST_SUBDOMAINS]
TEXTSET_BUDGETS.append(partial(boosting_train_budget, config))


def arch_eval_sets():
    return ARCH_CFG["eval_sets"] or config["evaluation"]["eval_sets"]


def analysis_json(sae):
    return f"{ARCH_DIR}/analysis/{sae}.json"


def architecture_inputs(wildcards):
    """Evaluation JSON of every SAE of the study on every eval set, and each SAE's analysis JSON."""
    return {
        "evals": [eval_json(sae, es) for sae in ARCH_SAES.values() for es in arch_eval_sets()],
        "analyses": [analysis_json(sae) for sae in ARCH_SAES.values()],
    }


def architecture_entries():
    """{label: {sae, evals: {eval_set: path}, analysis: path}}: what the table script joins."""
    return {
        label: {
            "sae": sae,
            "evals": {es: eval_json(sae, es) for es in arch_eval_sets()},
            "analysis": analysis_json(sae),
        }
        for label, sae in ARCH_SAES.items()
    }


def stacked_eval_json(eval_set):
    return f"{BOOST_DIR}/eval/{STACKED}/{eval_set}.json"


def boosting_entries():
    """The table's SAEs (base, residual and finetune per subdomain, stacked) and their evaluation JSONs."""
    base = boosting_base(config)
    general = boosting_general(config)
    evals = {base: {es: eval_json(base, es) for es in boosting_eval_sets(config)}}
    for sub in BOOST_SUBDOMAINS:
        for name in (residual_name(sub), finetune_name(sub)):
            evals[name] = {es: eval_json(name, es) for es in dict.fromkeys([sub, general])}
    evals[STACKED] = {es: stacked_eval_json(es) for es in boosting_eval_sets(config)}
    return {
        "base": base,
        "general": general,
        "residuals": {s: residual_name(s) for s in BOOST_SUBDOMAINS},
        "finetunes": {s: finetune_name(s) for s in BOOST_SUBDOMAINS},
        "stacked": STACKED,
        "evals": evals,
    }


def boosting_inputs(wildcards):
    return sorted({p for paths in boosting_entries()["evals"].values() for p in paths.values()})
