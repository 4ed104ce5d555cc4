"""The convergence study's SAEs: per SAE trained from scratch with a training curve, ``<sae>-control``, the
SAE finetuned on a little more of its own training text (``convergence.tokens`` tokens per epoch, another data
order). A converged SAE gains at most 1% held-out FVU from it (saeflow.studies.convergence.report)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError
from saeflow.sae_spec import finetune_of
from saeflow.study import core_extraction_budget

CONTROL_SUFFIX = "-control"


def control_name(sae: str) -> str:
    return f"{sae}{CONTROL_SUFFIX}"


def controlled_saes(config: Mapping[str, Any], defined: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The SAEs that get a control: `convergence.saes`, or (null) every SAE defined so far that trains from
    scratch with a training curve (monitor_on)."""
    names = (config.get("convergence") or {}).get("saes")
    if names is None:
        return [n for n, s in defined.items() if s.get("monitor_on") and not s.get("init_from")]
    unknown = [n for n in names if n not in defined]
    if unknown:
        raise ConfigError(
            f"convergence.saes: unknown SAE '{unknown[0]}' (known: {', '.join(sorted(defined))})"
        )
    without = [n for n in names if not defined[n].get("monitor_on")]
    if without:
        raise ConfigError(
            f"convergence.saes: '{without[0]}' has no training curve; "
            "give it monitor_on (a held-out text set)"
        )
    return list(names)


def convergence_specs(config: Mapping[str, Any], defined: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`<sae>-control` for every controlled SAE: its finetune on its own training set for `tokens` × epochs
    activations (a fraction of an epoch of the store), seeded differently, evaluated on general text only."""
    if config.get("convergence") is None:
        return {}
    section = config["convergence"]
    finetune = dict(section.get("finetune") or {"lr": 2e-4, "epochs": 3, "warmup_steps": 10})
    tokens = int(section.get("tokens", 16384))
    specs = {}
    for name in controlled_saes(config, defined):
        parent = defined[name]
        # a set a study budgets itself is rarely trained on from scratch; if it is, the control's token count
        # is off by that ratio, never its data
        store_tokens = core_extraction_budget(config, str(parent["train_on"]))
        epochs = min(1.0, tokens * float(finetune.get("epochs", 3)) / store_tokens)
        overrides = {
            **{k: v for k, v in finetune.items() if k != "epochs"},
            "epochs": epochs,
            "train_on": parent["train_on"],
            "seed": int(parent.get("seed", config.get("seed", 0))) + 1,
            "eval_sets": list(section.get("eval_sets") or ["general"]),
        }
        specs[control_name(name)] = finetune_of(defined, name, overrides, key="convergence.saes")
    return specs


def monitored_saes(specs: Mapping[str, Mapping[str, Any]], aliases: Mapping[str, str]) -> list[str]:
    """The SAEs trained with a training curve (monitor_on), each once (an alias shares its SAE's)."""
    return [n for n, spec in specs.items() if spec.get("monitor_on") and n not in aliases]
