# Core helpers: paths (saeflow.paths.RunPaths), asset / corpus / model inputs, the SAE registry and run parameters.
# Functions only (`snakemake --lint`); pure logic lives in src/saeflow. Studies keep their helpers in
# saeflow.studies.<study>.workflow and their rules in workflow/rules/studies/<study>.smk.
import os
import re

from saeflow.cluster import JobSizes, Site, job_threads, shared_threads
from saeflow.codehash import code_version
from saeflow.config import config_entry
from saeflow.paths import RunPaths
from saeflow.registry import (
    default_saelens_sets,
    evaluated_sets,
    extraction_settings,
    own_eval_sets,
    sae_aliases,
    sae_specs,
    saelens_sets,
)
from saeflow.studies import active_studies, sae_column_files

P = RunPaths.from_config(config)
RESULTS = P.results
RESOURCES = P.resources
MODEL = P.model
LAYER = P.layer
SAES = sae_specs(config)
# SAEs whose resolved spec equals an earlier one's: not trained, their files are the canonical SAE's (alias_sae)
SAE_ALIASES = sae_aliases(SAES, config)
# {SAE: the eval sets its one evaluation job covers}: its own, those studies read it on, its aliases'
EVALUATED_SETS = evaluated_sets(SAES, config, SAE_ALIASES)
# {SAE: the eval sets its evaluation also scores in SAELens' convention}
SAELENS_SETS = saelens_sets(SAES, config, SAE_ALIASES, EVALUATED_SETS)
STUDIES = active_studies(config)
# {SAE: per-SAE column files studies publish (Study.sae_columns)}: other studies' tables append them to its rows
SAE_COLUMNS = sae_column_files(config, SAES)


def sae_columns_of(saes):
    """{SAE: its published column files} for the SAEs of a table: a rule's param; its input is the files."""
    return {s: SAE_COLUMNS[s] for s in dict.fromkeys(saes) if s in SAE_COLUMNS}


# Memory and runtime of every job by rule kind, from the config's scale, times the retry attempt, capped at
# the site's largest job (max-threads, default-resources max_mem_mb / max_runtime of the SLURM profile):
# saeflow.cluster. Rules say `mem_mb=SIZES.mem_mb("train"), runtime=SIZES.runtime("train")`.
SIZES = JobSizes(config, Site.from_workflow(workflow))
# Threads of the multi-threaded rules: half the cores of a local run (saeflow.cluster.shared_threads). One job
# given every core leaves part of them idle (measured on 2 cores, CPU-s per wall-s of the default DAG's 2-thread
# jobs: extraction 1.72, training 1.53, architecture analyses 1.22, Bias in Bios 1.09, the recommender 0.98),
# while the DAG nearly always has a second job ready. Not workflow.cores, which is an error when Snakemake runs
# without --cores (`snakemake --report`, a cluster executor); there the profile's set-threads / max-threads decide.
JOB_THREADS = shared_threads(workflow.resource_settings.cores)
# Spliced evaluations run single-threaded: their many small ops scale poorly across threads, so two 1-thread
# jobs side by side finish more evaluations per minute than one 2-thread job (measured: 294 vs 452 tok/s for
# one job at 1 vs 2 threads, i.e. 588 vs 452 tok/s for the pair).
EVAL_THREADS = 1

asset_marker = P.asset_marker
uri_inputs = P.uri_inputs
resolve = P.resolve
texts = P.texts
acts_manifest = P.acts_manifest
corpus_stats = P.corpus_stats
model_marker = P.model_marker
sae_dir = P.sae_dir
sae_weights = P.sae_weights
eval_json = P.eval_json
sae_evals = P.sae_evals
baseline_json = P.baseline_json


wildcard_constraints:
    asset=r"[A-Za-z0-9_\-]+",
    textset=r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+",
    sae=r"[A-Za-z0-9_\-.]+",
    eval_set=r"[A-Za-z0-9_\-]+",
    layer=r"\d+",


def code(script):
    """The code version of a rule: a hash of its script and every saeflow module the script imports."""
    return code_version(os.path.join(workflow.basedir, "scripts", script))


def sae_spec(sae):
    try:
        return SAES[sae]
    except KeyError:
        raise ValueError(f"unknown SAE '{sae}'; configured: {', '.join(sorted(SAES))}")


def model_params():
    return {k: config["model"][k] for k in ("name", "source", "layer", "max_length", "dtype")}


def sae_model_params(sae):
    """The model settings an SAE is evaluated with: the run's model at the SAE's own layer."""
    return {**model_params(), "layer": int(sae_spec(sae)["layer"])}


def sae_acts_manifest(sae):
    spec = sae_spec(sae)
    return P.acts_manifest(spec["train_on"], spec["model"], spec["layer"])


def lm_saes():
    """The SAEs of the run's causal LM (evaluated by the core spliced evaluation)."""
    return [name for name, spec in SAES.items() if spec["model"] == MODEL]


def core_targets():
    return [P.table("core_metrics"), P.table("core_metrics", "md")]


def study_targets():
    """Final outputs of every active study, in study order."""
    return [t for study in STUDIES for t in study.targets(config, SAES)]


def summary_path():
    return P.table("summary", "md")


def all_targets():
    return core_targets() + study_targets() + [summary_path()]


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


# --- Activations, training, evaluation (activations.smk, train.smk, evaluate.smk) ------------------------------
def extraction_params(textset):
    """Token budget and storage settings of one text set (saeflow.registry.extraction_settings)."""
    return extraction_settings(config, textset)


def textset_threads(textset, epochs=1):
    """Threads of a job over one text set's activations `epochs` times, by its rows (saeflow.cluster.job_threads)."""
    return job_threads(int(extraction_params(textset)["max_tokens"] * float(epochs)), JOB_THREADS)


def training_threads(w):
    spec = sae_spec(w.sae)
    return textset_threads(spec["train_on"], spec["epochs"])


def model_dir_of(wildcards, input):
    """The prepared model's directory, inferred from the job's `model` input (its prepared.json marker)."""
    return os.path.dirname(input.model)


def train_inputs(w):
    """The SAE's activations, plus the SAE it starts from (init_from) or, for a residual SAE, the frozen base it
    reads (extra.base, a saved SAE directory), and the held-out set that scores its training curve (monitor_on).
    """
    spec = sae_spec(w.sae)
    inputs = {"acts": sae_acts_manifest(w.sae)}
    if spec.get("init_from"):
        inputs["parent"] = P.sae_cfg(spec["init_from"])
    if spec.get("monitor_on"):
        inputs["monitor"] = P.acts_manifest(spec["monitor_on"], spec["model"], spec["layer"])
    base = (spec.get("extra") or {}).get("base")
    if base:
        inputs["base_cfg"] = f"{base}/cfg.json"
        inputs["base_weights"] = f"{base}/sae_weights.safetensors"
    return inputs


def alias_pattern():
    """Regex of the alias SAE names (for the alias rules' wildcard constraints; matches nothing when none)."""
    return "|".join(re.escape(a) for a in sorted(SAE_ALIASES)) or "(?!)"


def canonical_sae(sae):
    """The SAE whose training `sae` shares (itself unless it is an alias)."""
    return SAE_ALIASES.get(sae, sae)


def eval_cache(eval_set, model, layer):
    """The shared evaluation cache beside the baseline JSON (saeflow.evaluate.EvalCache)."""
    return baseline_json(eval_set, model, layer).removesuffix(".json") + ".safetensors"


def sae_eval_inputs(w):
    """An SAE's evaluation job: the model, the SAE, and the baseline JSON and shared cache of each eval set it
    covers (EVALUATED_SETS order)."""
    layer = sae_spec(w.sae)["layer"]
    sets = EVALUATED_SETS[w.sae]
    return {
        "model": model_marker(),
        "baselines": [baseline_json(es, MODEL, layer) for es in sets],
        "caches": [eval_cache(es, MODEL, layer) for es in sets],
        "sae": f"{sae_dir(w.sae)}/cfg.json",
        "weights": sae_weights(w.sae),
    }


def split_eval_input(w):
    """The SAE's evaluations file; an eval set it does not cover is a workflow bug (EVALUATED_SETS misses a
    reader: a study's Study.eval_sets)."""
    covered = EVALUATED_SETS.get(w.sae, [])
    if w.eval_set not in covered:
        raise ValueError(
            f"{eval_json(w.sae, w.eval_set)} is asked for, but SAE '{w.sae}' is evaluated on {covered} only; "
            "the study reading it must name the set in Study.eval_sets"
        )
    return sae_evals(w.sae)


def core_eval_jsons():
    """Every LM SAE x eval set evaluation; an SAE may name its own eval sets (an SSAE: its subdomain + general)."""
    return [eval_json(sae, es) for sae in lm_saes() for es in own_eval_sets(SAES[sae], config)]


def summary_tables(wildcards):
    """Core metrics first, then every study's Markdown tables in study order."""
    return [t for t in core_targets() + study_targets() if t.endswith(".md")]


def summary_figures(wildcards):
    return [t for t in study_targets() if t.endswith(".png")]
