"""The architecture and boosting studies in the SAE registry (pure Python: the workflow imports it at parse time).

* ``architectures:`` one SAE per architecture (``arch-<architecture>``), each a copy of the reference SAE's spec
  (``architectures.reference``, the TopK ``gsae`` by default: same width, k, learning rate, batch, epochs, text
  set) with only the architecture changed, so the comparison runs at matched L0. JumpReLU has no k: its L0 is
  steered to the reference's k through ``extra.target_l0`` (saeflow.sae.jumprelu). ``architectures.common``
  overrides keys for every copy (e.g. fewer epochs on a CPU budget); then the reference's architecture is
  retrained under it too (``arch-topk``) so that all rows share one training setup. ``architectures.settings``
  adds per-architecture keys (merged into the copy, ``extra`` key by key).
* ``boosting:`` per subdomain a residual SAE of a frozen base (``boost-<subdomain>``, saeflow.sae.residual,
  trained on ``<subdomain>.train`` with ``extra.base`` = the base's SAE directory) and the baseline it is
  compared with, the base fully finetuned on the same text (``boost-ft-<subdomain>``, ``init_from`` the base).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError

ARCH_PREFIX = "arch-"
BOOST_PREFIX = "boost-"
FINETUNE_PREFIX = "boost-ft-"
STACKED = "stacked"
"""Name of the boosted evaluation of the base plus every residual SAE."""

# Keys of the reference spec that belong to that SAE, not to its architecture comparison copies.
_NOT_COPIED = ("architecture", "extra", "init_from", "eval_sets")
_RESIDUAL_DEFAULTS = {"architecture": "residual_batchtopk", "d_sae": 512, "k": 5}


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return config.get(key) or {}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, the `extra` mapping merged key by key."""
    out = {**base, **copy.deepcopy(dict(over))}
    if "extra" in over:
        out["extra"] = {**(base.get("extra") or {}), **(over.get("extra") or {})}
    return out


def architectures_enabled(config: Mapping[str, Any]) -> bool:
    return bool(_section(config, "architectures").get("enabled", False))


def boosting_enabled(config: Mapping[str, Any]) -> bool:
    return bool(_section(config, "boosting").get("enabled", False))


def _reference(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    ref = str(_section(config, "architectures").get("reference", "gsae"))
    saes = config.get("saes") or {}
    if ref not in saes:
        raise ConfigError(f"architectures.reference: '{ref}' is not an SAE under saes: "
                          f"(known: {', '.join(sorted(saes)) or 'none'})")
    return ref, copy.deepcopy(dict(saes[ref]))


def _retrain_reference(config: Mapping[str, Any]) -> bool:
    """When `architectures.common` changes a key of the reference's spec, the reference's architecture is retrained
    under it too (``arch-<its architecture>``), so that every row of the table shares one training setup."""
    from saeflow.experiments import SAE_DEFAULTS  # not at the top: saeflow.experiments imports this module

    common = _section(config, "architectures").get("common") or {}
    _, ref_spec = _reference(config)
    return any(ref_spec.get(k, SAE_DEFAULTS.get(k)) != v for k, v in common.items())


def architecture_saes(config: Mapping[str, Any]) -> dict[str, str]:
    """{architecture label: registry name} of the study, in config order: the reference's architecture first
    (``topk`` for the default gsae: the reference SAE itself, or ``arch-topk`` when `architectures.common` changes
    its spec), then ``arch-<architecture>`` for each other listed one."""
    if not architectures_enabled(config):
        return {}
    ref, spec = _reference(config)
    ref_arch = str(spec.get("architecture", "topk"))
    out = {ref_arch: f"{ARCH_PREFIX}{ref_arch}" if _retrain_reference(config) else ref}
    for arch in _section(config, "architectures").get("names") or []:
        out.setdefault(str(arch), f"{ARCH_PREFIX}{arch}")
    return out


def architecture_specs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SPEC_GENERATORS entry: ``arch-<architecture>`` specs, the reference's spec with another architecture."""
    if not architectures_enabled(config):
        return {}
    cfg = _section(config, "architectures")
    _, ref_spec = _reference(config)
    common = _merge({k: v for k, v in ref_spec.items() if k not in _NOT_COPIED}, cfg.get("common") or {})
    settings = cfg.get("settings") or {}
    ref_arch = str(ref_spec.get("architecture", "topk"))
    names = [str(a) for a in cfg.get("names") or []]
    if _retrain_reference(config) and ref_arch not in names:
        names.insert(0, ref_arch)
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise ConfigError(f"architectures.settings: {', '.join(unknown)} not in architectures.names")
    out = {}
    k = int(common.get("k", 32))
    for arch in names:
        if arch == ref_arch and not _retrain_reference(config):
            continue  # the reference SAE is this architecture's entry
        extra = dict(ref_spec.get("extra") or {}) if arch == ref_arch else {}
        spec = _merge({**copy.deepcopy(common), "architecture": arch, "extra": extra}, settings.get(arch) or {})
        if arch == "jumprelu":
            spec["extra"].setdefault("target_l0", k)  # matched L0 through the L0 penalty's target
        if cfg.get("eval_sets"):
            spec["eval_sets"] = list(cfg["eval_sets"])
        out[f"{ARCH_PREFIX}{arch}"] = spec
    return out


# --------------------------------------------------------------------------------------------- boosting


def boosting_subdomains(config: Mapping[str, Any]) -> list[str]:
    if not boosting_enabled(config):
        return []
    subs = [str(s) for s in _section(config, "boosting").get("subdomains") or []]
    corpora = config.get("corpora") or {}
    unknown = [s for s in subs if s not in corpora]
    if unknown:
        raise ConfigError(f"boosting.subdomains: {', '.join(unknown)} not under corpora: "
                          f"(known: {', '.join(sorted(corpora))})")
    return subs


def boosting_base(config: Mapping[str, Any]) -> str:
    """Registry name of the frozen base SAE: an SAE under saes: or one of the architecture study's."""
    base = str(_section(config, "boosting").get("base", f"{ARCH_PREFIX}batchtopk"))
    known = set(config.get("saes") or {}) | set(architecture_specs(config))
    if base not in known:
        raise ConfigError(f"boosting.base: unknown SAE '{base}' (known: {', '.join(sorted(known))}); "
                          "an arch-<name> base needs architectures.enabled and <name> in architectures.names")
    return base


def boosting_general(config: Mapping[str, Any]) -> str:
    return str(_section(config, "boosting").get("general_corpus", "general"))


def residual_name(subdomain: str) -> str:
    return f"{BOOST_PREFIX}{subdomain}"


def finetune_name(subdomain: str) -> str:
    return f"{FINETUNE_PREFIX}{subdomain}"


def _base_spec(config: Mapping[str, Any], base: str) -> dict[str, Any]:
    saes = config.get("saes") or {}
    return copy.deepcopy(dict(saes[base])) if base in saes else architecture_specs(config)[base]


def boosting_specs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SPEC_GENERATORS entry: per subdomain the residual SAE of the base and the base's full finetune."""
    subs = boosting_subdomains(config)
    if not subs:
        return {}
    cfg = _section(config, "boosting")
    base = boosting_base(config)
    base_dir = f"{config['results_dir']}/sae/{base}"
    residual = _merge(dict(_RESIDUAL_DEFAULTS), cfg.get("residual") or {})
    if not str(residual["architecture"]).startswith("residual_"):
        raise ConfigError(f"boosting.residual.architecture must be a residual architecture (residual_topk, "
                          f"residual_batchtopk); got '{residual['architecture']}'")
    residual["extra"] = {**(residual.get("extra") or {}), "base": base_dir}
    base_spec = {k: v for k, v in _base_spec(config, base).items() if k not in ("init_from", "eval_sets", "seed")}
    finetune = _merge(base_spec, cfg.get("finetune") or {})
    general = boosting_general(config)
    out = {}
    for sub in subs:
        eval_sets = [sub] if sub == general else [sub, general]
        out[residual_name(sub)] = {**copy.deepcopy(residual), "train_on": f"{sub}.train", "eval_sets": eval_sets}
        out[finetune_name(sub)] = {**copy.deepcopy(finetune), "train_on": f"{sub}.train", "init_from": base,
                                   "eval_sets": eval_sets}
    return out


def boosting_train_budget(config: Mapping[str, Any], textset: str) -> int | None:
    """Extraction budget of a boosting subdomain's training set (a TEXTSET_BUDGETS entry); None otherwise."""
    budget = _section(config, "boosting").get("train_tokens")
    if budget is None or not textset.endswith(".train"):
        return None
    return int(budget) if textset.removesuffix(".train") in boosting_subdomains(config) else None


def boosting_eval_sets(config: Mapping[str, Any]) -> list[str]:
    """The general corpus, then every subdomain: what the base and the stacked boosted SAE are evaluated on."""
    general = boosting_general(config)
    return [general, *(s for s in boosting_subdomains(config) if s != general)]
