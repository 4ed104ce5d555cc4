"""The recsys study's names and SAEs: the SASRec model (``sasrec-<data.name>``), its SAE training set
(``<data.name>.train``: the scoring state at every position of every user's history, written by the study's
own rule) and one TopK + AuxK SAE per k (``recsys-topk-k<k>``, width ``expansion`` × d_model) trained on it by
the core ``train_sae`` rule. Pure Python: imported at parse time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError
from saeflow.sae_spec import merge_spec

RECSYS_PREFIX = "recsys-"
UNTRAINED = "untrained"
"""Unit set of the untrained-SAE control (same shape as the reference SAE, random weights)."""
NEURONS = "neurons"
"""Unit set of the raw-neuron control (the d_model coordinates of the scoring state)."""

_SAE_DEFAULTS = {
    "architecture": "topk",
    "lr": 0.001,
    "batch_size": 256,
    "epochs": 5.0,
    "warmup_steps": 20,
    "dead_tokens": 20_000,
}


def recsys_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("recsys") or {}


def recsys_active(config: Mapping[str, Any]) -> bool:
    return config.get("recsys") is not None


def recsys_corpus(config: Mapping[str, Any]) -> str:
    """The study's own corpus (its SAEs train on ``<corpus>.train``)."""
    return str((recsys_section(config).get("data") or {}).get("name", "ml100k"))


def recsys_textset(config: Mapping[str, Any]) -> str:
    return f"{recsys_corpus(config)}.train"


def recsys_model_name(config: Mapping[str, Any]) -> str:
    return f"sasrec-{recsys_corpus(config)}"


def recsys_layer(config: Mapping[str, Any]) -> int:
    """The scoring layer (the last block, final layer norm included): RecSAE's site."""
    return int((recsys_section(config).get("model") or {}).get("n_layers", 2)) - 1


def recsys_ks(config: Mapping[str, Any]) -> list[int]:
    ks = [int(k) for k in (recsys_section(config).get("sae") or {}).get("ks", [4, 8, 16])]
    if not ks or len(set(ks)) != len(ks):
        raise ConfigError(f"recsys.sae.ks must be distinct values; got {ks}")
    return ks


def recsys_reference_k(config: Mapping[str, Any]) -> int:
    """k of the SAE that the ablation edits and the untrained control copies."""
    ks = recsys_ks(config)
    k = (recsys_section(config).get("sae") or {}).get("reference_k")
    k = ks[len(ks) // 2] if k is None else int(k)
    if k not in ks:
        raise ConfigError(f"recsys.sae.reference_k: {k} is not one of recsys.sae.ks {ks}")
    return k


def sae_name(k: int) -> str:
    return f"{RECSYS_PREFIX}topk-k{int(k)}"


def recsys_d_sae(config: Mapping[str, Any]) -> int:
    sec = recsys_section(config)
    d = int((sec.get("model") or {}).get("d_model", 64))
    return int((sec.get("sae") or {}).get("expansion", 16)) * d


def recsys_specs(config: Mapping[str, Any], defined: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One TopK + AuxK SAE per k on the SASRec scoring state."""
    if not recsys_active(config):
        return {}
    sae = recsys_section(config).get("sae") or {}
    base = merge_spec(dict(_SAE_DEFAULTS), sae.get("settings") or {})
    if base["architecture"] != "topk":
        raise ConfigError(
            f"recsys.sae.settings.architecture must be topk (RecSAE); got '{base['architecture']}'"
        )
    recsys_reference_k(config)  # refuse a reference k that is not trained
    out = {}
    for k in recsys_ks(config):
        out[sae_name(k)] = {
            **base,
            "k": k,
            "d_sae": recsys_d_sae(config),
            "model": recsys_model_name(config),
            "layer": recsys_layer(config),
            "train_on": recsys_textset(config),
        }
    return out


def recsys_corpora(config: Mapping[str, Any]) -> list[str]:
    return [recsys_corpus(config)] if recsys_active(config) else []


def recsys_unit_sets(config: Mapping[str, Any]) -> list[str]:
    """What gets a concept dictionary: every SAE, the untrained SAE and the raw neurons."""
    return [*(sae_name(k) for k in recsys_ks(config)), UNTRAINED, NEURONS]
