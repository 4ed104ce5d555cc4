"""One SAE's spec: the defaults every spec is resolved against, and its content hash.

The defaults are those of the dataclasses that consume them (`SAEConfig`, `TrainConfig`): every default that changes
what an SAE learns is written into the resolved spec, so a rule that takes the spec as `params:` reruns when
any of them changes. Settings that do not change the result (checkpoint and log intervals) stay out.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError

SAE_DEFAULTS: dict[str, Any] = {
    # SAEConfig
    "architecture": "topk",
    "d_sae": 4608,
    "k": 32,
    "l1_coefficient": 5.0,
    "aux_k": None,
    "aux_k_coef": 1 / 32,
    "dead_tokens": 100_000,
    "extra": {},
    # TrainConfig
    "lr": 4e-4,
    "batch_size": 1024,
    "epochs": 1.0,
    "warmup_steps": 50,
    "decay_fraction": 0.2,
    "tilt": 0.0,
    "grad_clip": 1.0,
    "outlier_norm_ratio": 10.0,
    # the registry's own
    "init_from": None,
}
"""Literal (the workflow imports this module at parse time, without torch); tests/test_sae_spec.py checks it
against the dataclasses' defaults. `architecture` and `d_sae` have no dataclass default."""
SPEC_EXCLUDED_FIELDS = frozenset({"d_in", "checkpoint_every", "log_every", "seed"})
"""Dataclass fields that are not spec defaults: d_in comes from the activations, seed from the run, and the
checkpoint / log intervals do not change what is learned."""


def resolve_sae(name: str, spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """`spec` over the defaults, with the run's seed, model and layer (config ``model``) unless it names its own;
    `train_on` is required."""
    resolved = copy.deepcopy(SAE_DEFAULTS)
    resolved.update(copy.deepcopy(dict(spec)))
    resolved.setdefault("seed", config.get("seed", 0))
    model = config.get("model") or {}
    resolved.setdefault("model", model.get("name"))
    resolved.setdefault("layer", model.get("layer"))
    if "train_on" not in resolved:
        raise ConfigError(f"saes.{name}.train_on is required (a text set such as 'general.train')")
    return resolved


def merge_spec(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, the `extra` mapping merged key by key."""
    out = {**copy.deepcopy(dict(base)), **copy.deepcopy(dict(over))}
    if "extra" in over:
        out["extra"] = {**(base.get("extra") or {}), **(over.get("extra") or {})}
    return out


def spec_id(spec: Mapping[str, Any]) -> str:
    """Short content hash of an SAE spec (sorted JSON → sha256): the same parameters always get one id."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
