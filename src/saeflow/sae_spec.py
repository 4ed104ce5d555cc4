"""One SAE's spec: the defaults every spec is resolved against, and its content hash.

The defaults are those of the dataclasses that consume them (`SAEConfig`, `TrainConfig`): every default that
changes what an SAE learns is written into the resolved spec, so a rule that takes the spec as `params:`
reruns when any of them changes. Settings that do not change the result (checkpoint and log intervals) stay
out.
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
    "select_dtype": "float32",
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
SPEC_EXCLUDED_FIELDS = frozenset(
    {"d_in", "checkpoint_every", "log_every", "monitor_every", "snapshots", "seed"}
)
"""Dataclass fields that are not spec defaults: d_in comes from the activations, seed from the run, and the
checkpoint / log / snapshot intervals do not change what is learned."""


_BATCHTOPK_EXTRA = frozenset({"threshold_decay"})
ARCHITECTURE_EXTRA: dict[str, frozenset[str]] = {
    "relu": frozenset({"fast", "target_l0", "l1_rate", "l1_hold_steps"}),
    "topk": frozenset({"fast"}),
    "batchtopk": _BATCHTOPK_EXTRA,
    "jumprelu": frozenset(
        {"fast", "bandwidth", "target_l0", "l0_coefficient", "threshold_init", "threshold_lr_scale"}
    ),
    "matryoshka": _BATCHTOPK_EXTRA | {"prefixes", "prefix_fractions"},
    "ortsae": _BATCHTOPK_EXTRA | {"ortho_gamma", "ortho_chunk"},
    "residual_topk": frozenset({"fast", "base", "encoder_init_scale"}),
    "residual_batchtopk": _BATCHTOPK_EXTRA | {"base", "encoder_init_scale"},
}
"""The `extra` settings each architecture reads (literal for the parse-time import; tests/test_sae_spec.py
checks it against the architectures' source): any other key is a typo and refused when the config is read."""
USES_K = frozenset({"topk", "batchtopk", "matryoshka", "ortsae", "residual_topk", "residual_batchtopk"})


def check_spec(name: str, spec: Mapping[str, Any]) -> None:
    """Refuse, before any job runs, what would only fail (or be silently ignored) inside a training job."""
    arch = spec.get("architecture")
    if arch not in ARCHITECTURE_EXTRA:
        raise ConfigError(
            f"SAE '{name}': architecture must be one of {', '.join(sorted(ARCHITECTURE_EXTRA))}; got {arch!r}"
        )
    extra = spec.get("extra") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError(f"SAE '{name}': extra must be a mapping; got {extra!r}")
    unknown = sorted(set(extra) - ARCHITECTURE_EXTRA[arch])
    if unknown:
        allowed = ", ".join(sorted(ARCHITECTURE_EXTRA[arch])) or "none"
        raise ConfigError(
            f"SAE '{name}': unknown key extra.{unknown[0]} for architecture {arch} (allowed: {allowed})"
        )
    unknown_top = sorted(set(spec) - set(SAE_DEFAULTS) - _SPEC_KEYS)
    if unknown_top:
        raise ConfigError(f"SAE '{name}': unknown key '{unknown_top[0]}'")
    if arch in USES_K and not 1 <= int(spec["k"]) <= int(spec["d_sae"]):
        raise ConfigError(f"SAE '{name}': k must be between 1 and d_sae ({spec['d_sae']}); got {spec['k']}")


_SPEC_KEYS = frozenset(
    {
        "train_on",
        "eval_sets",
        "saelens_eval_sets",
        "seed",
        "model",
        "layer",
        "checkpoint_every",
        "log_every",
        "monitor_on",
        "monitor_every",
        "snapshots",
    }
)
"""Spec keys with no default (or not learning-relevant) besides SAE_DEFAULTS."""


def resolve_sae(name: str, spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """`spec` over the defaults, with the run's seed, model and layer (config ``model``) unless it names its
    own; `train_on` is required."""
    resolved = copy.deepcopy(SAE_DEFAULTS)
    resolved.update(copy.deepcopy(dict(spec)))
    resolved.setdefault("seed", config.get("seed", 0))
    model = config.get("model") or {}
    resolved.setdefault("model", model.get("name"))
    resolved.setdefault("layer", model.get("layer"))
    if "train_on" not in resolved:
        raise ConfigError(f"saes.{name}.train_on is required (a text set such as 'general.train')")
    check_spec(name, resolved)
    return resolved


def merge_spec(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, the `extra` mapping merged key by key."""
    out = {**copy.deepcopy(dict(base)), **copy.deepcopy(dict(over))}
    if "extra" in over:
        out["extra"] = {**(base.get("extra") or {}), **(over.get("extra") or {})}
    return out


def finetune_of(
    defined: Mapping[str, Mapping[str, Any]], base: str, overrides: Mapping[str, Any] | None, *, key: str
) -> dict[str, Any]:
    """The spec of a finetune of SAE `base` (one defined before): the base's settings without its run-specific
    keys (text set, parent, seed, eval sets), `overrides` on top (``extra`` key by key), ``init_from`` = base.
    `key` names the config key that chose the base, for the error."""
    if base not in defined:
        raise ConfigError(f"{key}: '{base}' is not a defined SAE (known: {', '.join(sorted(defined))})")
    own = {
        k: v
        for k, v in dict(defined[base]).items()
        if k not in ("train_on", "init_from", "seed", "eval_sets", "saelens_eval_sets")
    }
    return {**merge_spec(own, overrides or {}), "init_from": base}


def spec_id(spec: Mapping[str, Any]) -> str:
    """Short content hash of an SAE spec (sorted JSON → sha256): the same parameters always get one id."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
