"""The boosting study's SAEs: per subdomain a residual SAE of a frozen base (``boost-<subdomain>``,
saeflow.sae.residual, trained on ``<subdomain>.train`` with ``extra.base`` = the base's SAE directory) and
the baseline it is compared with, the base fully finetuned on the same text (``boost-ft-<subdomain>``,
``init_from`` the base). The base is any SAE defined before this study (under ``saes:`` or by the
architectures study)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError
from saeflow.sae_spec import finetune_of, merge_spec

BOOST_PREFIX = "boost-"
FINETUNE_PREFIX = "boost-ft-"
STACKED = "stacked"
"""Name of the boosted evaluation of the base plus every residual SAE."""

_RESIDUAL_DEFAULTS = {"architecture": "residual_batchtopk", "d_sae": 512, "k": 5}


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return config.get(key) or {}


def boosting_subdomains(config: Mapping[str, Any]) -> list[str]:
    if config.get("boosting") is None:
        return []
    subs = [str(s) for s in _section(config, "boosting").get("subdomains") or []]
    corpora = config.get("corpora") or {}
    unknown = [s for s in subs if s not in corpora]
    if unknown:
        raise ConfigError(
            f"boosting.subdomains: {', '.join(unknown)} not under corpora: "
            f"(known: {', '.join(sorted(corpora))})"
        )
    return subs


def boosting_base(config: Mapping[str, Any], defined: Mapping[str, Any]) -> str:
    """Registry name of the frozen base SAE: any SAE defined before this study (under saes:, by a sweep, or by
    the architecture study)."""
    base = str(_section(config, "boosting").get("base", "arch-batchtopk"))
    if base not in defined:
        raise ConfigError(
            f"boosting.base: unknown SAE '{base}' (known: {', '.join(sorted(defined))}); "
            "an arch-<name> base needs the architectures section with <name> in architectures.names"
        )
    return base


def boosting_general(config: Mapping[str, Any]) -> str:
    return str(_section(config, "boosting").get("general_corpus", "general"))


def residual_name(subdomain: str) -> str:
    return f"{BOOST_PREFIX}{subdomain}"


def finetune_name(subdomain: str) -> str:
    return f"{FINETUNE_PREFIX}{subdomain}"


def boosting_specs(config: Mapping[str, Any], defined: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The study's SAEs: per subdomain the residual SAE of the base and the base's full finetune."""
    subs = boosting_subdomains(config)
    if not subs:
        return {}
    cfg = _section(config, "boosting")
    base = boosting_base(config, defined)
    base_dir = f"{config['results_dir']}/sae/{base}"
    residual = merge_spec(dict(_RESIDUAL_DEFAULTS), cfg.get("residual") or {})
    if not str(residual["architecture"]).startswith("residual_"):
        raise ConfigError(
            f"boosting.residual.architecture must be a residual architecture (residual_topk, "
            f"residual_batchtopk); got '{residual['architecture']}'"
        )
    residual["extra"] = {**(residual.get("extra") or {}), "base": base_dir}
    finetune = finetune_of(defined, base, cfg.get("finetune"), key="boosting.base")
    general = boosting_general(config)
    out = {}
    for sub in subs:
        eval_sets = [sub] if sub == general else [sub, general]
        out[residual_name(sub)] = {
            **copy.deepcopy(residual),
            "train_on": f"{sub}.train",
            "eval_sets": eval_sets,
        }
        out[finetune_name(sub)] = {
            **copy.deepcopy(finetune),
            "train_on": f"{sub}.train",
            "init_from": base,
            "eval_sets": eval_sets,
        }
    return out


def boosting_train_budget(config: Mapping[str, Any], textset: str) -> int | None:
    """Extraction budget of a boosting subdomain's training set; None for any other text set."""
    budget = _section(config, "boosting").get("train_tokens")
    if budget is None or not textset.endswith(".train"):
        return None
    return int(budget) if textset.removesuffix(".train") in boosting_subdomains(config) else None


def boosting_eval_sets(config: Mapping[str, Any]) -> list[str]:
    """The general corpus, then every subdomain: what the base and the stacked boosted SAE are evaluated
    on."""
    general = boosting_general(config)
    return [general, *(s for s in boosting_subdomains(config) if s != general)]


def boosting_evaluations(config: Mapping[str, Any], saes: Mapping[str, Any]) -> dict[str, list[str]]:
    """{base SAE: the study's eval sets}: the table reads the base (defined elsewhere) on all of them."""
    if not boosting_subdomains(config):
        return {}
    return {boosting_base(config, saes): boosting_eval_sets(config)}
