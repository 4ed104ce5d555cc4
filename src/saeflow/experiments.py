"""The SAE registry: every SAE the workflow trains, by name, with its fully resolved parameters.

Snakemake rules take `sae_specs(config)[name]` as `params:`, so changing any hyper-parameter of one SAE reruns
exactly that SAE and what depends on it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from saeflow.errors import ConfigError

SAE_DEFAULTS: dict[str, Any] = {
    "architecture": "topk",
    "d_sae": 4608,
    "k": 32,
    "l1_coefficient": 5.0,
    "aux_k_coef": 1 / 32,
    "lr": 4e-4,
    "batch_size": 1024,
    "epochs": 1.0,
    "warmup_steps": 50,
    "tilt": 0.0,
    "init_from": None,
    "extra": {},
}


def resolve_sae(name: str, spec: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    resolved = copy.deepcopy(SAE_DEFAULTS)
    resolved.update(copy.deepcopy(spec))
    resolved.setdefault("seed", config.get("seed", 0))
    if "train_on" not in resolved:
        raise ConfigError(f"saes.{name}.train_on is required (a text set such as 'general.train')")
    corpus = resolved["train_on"].split(".", 1)[0]
    if corpus not in config.get("corpora", {}) and "." not in resolved["train_on"]:
        raise ConfigError(f"saes.{name}.train_on: unknown text set '{resolved['train_on']}'")
    return resolved


def configured_saes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The SAEs listed by hand under `saes:`."""
    return dict(config.get("saes", {}))


# Each study contributes a function config -> {name: unresolved spec}; names must not collide.
SPEC_GENERATORS: list[Callable[[dict[str, Any]], dict[str, dict[str, Any]]]] = [configured_saes]


def sae_specs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """All SAEs of a run, resolved: the configured ones plus those the studies generate."""
    specs: dict[str, dict[str, Any]] = {}
    for generate in SPEC_GENERATORS:
        for name, spec in generate(config).items():
            if name in specs:
                raise ConfigError(f"SAE name '{name}' is defined twice ({generate.__name__})")
            specs[name] = resolve_sae(name, spec, config)
    for name, spec in specs.items():
        parent = spec.get("init_from")
        if parent is not None and parent not in specs:
            raise ConfigError(f"saes.{name}.init_from: unknown SAE '{parent}'; known: {', '.join(sorted(specs))}")
    return specs


def spec_id(spec: dict[str, Any]) -> str:
    """Short content hash of an SAE spec (sorted JSON → sha256): the same parameters always get one id."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]


def sweep_specs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The SAEs of `sweeps:`: each sweep's `base` spec with every combination of its `grid` values (Cartesian
    product), named `<sweep>-<spec_id>`, so a sweep needs no hand-made names and a point never trains twice."""
    out: dict[str, dict[str, Any]] = {}
    for sweep, body in (config.get("sweeps") or {}).items():
        grid = body.get("grid") or {}
        keys = sorted(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            spec = {**copy.deepcopy(body.get("base") or {}), **dict(zip(keys, values, strict=True))}
            out[f"{sweep}-{spec_id(spec)}"] = spec
    return out


def extraction_settings(
    config: dict[str, Any], textset: str, budgets: Sequence[Callable[[str], int | None]] = ()
) -> dict[str, Any]:
    """Token budget and storage settings of one text set ("<corpus>.<split>") for extract_activations.

    `budgets` are the studies' functions textset -> token budget (None: not theirs); the first budget one returns
    wins, else held-out sets get `extraction.heldout_tokens` and every other set `extraction.train_tokens`.
    """
    ex = config["extraction"]
    split = textset.split(".", 1)[1]
    own = [b for b in (budget(textset) for budget in budgets) if b is not None]
    return {
        "max_tokens": (own[0] if own else ex["heldout_tokens"] if split == "heldout" else ex["train_tokens"]),
        "batch_size": config["model"]["batch_size"],
        "shard_rows": ex["shard_rows"],
        "dtype": ex.get("dtype", "float16"),
    }


SPEC_GENERATORS.append(sweep_specs)

# Studies register their generators here (their modules do not import this one, so there is no cycle).
from saeflow.ssae import ssae_specs

SPEC_GENERATORS.append(ssae_specs)

from saeflow.bias_specs import bias_ssae_specs

SPEC_GENERATORS.append(bias_ssae_specs)

from saeflow.arch_specs import architecture_specs, boosting_specs

SPEC_GENERATORS.append(architecture_specs)
SPEC_GENERATORS.append(boosting_specs)
