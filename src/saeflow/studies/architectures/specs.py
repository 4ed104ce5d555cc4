"""The architecture study's SAEs (pure Python: the workflow imports it at parse time).

``architectures:`` one SAE per architecture (``arch-<architecture>``), each a copy of the reference SAE's spec
  (``architectures.reference``, the TopK ``gsae`` by default: same width, k, learning rate, batch, epochs,
  text set) with only the architecture changed, so the comparison runs at matched L0. JumpReLU has no k: its
  L0 is steered to the reference's k through ``extra.target_l0`` (saeflow.sae.jumprelu).
  ``architectures.common`` overrides keys for every copy (e.g. fewer epochs on a CPU budget); then the
  reference's architecture is retrained under it too (``arch-topk``) so that all rows share one training
  setup. ``architectures.settings`` adds per-architecture keys (merged into the copy, ``extra`` key by key).
  ReLU + L1 has no k either: its L1 coefficient is steered during training so that its L0 lands on k
  (``extra.target_l0``, saeflow.sae.relu).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError
from saeflow.sae_spec import SAE_DEFAULTS, merge_spec

ARCH_PREFIX = "arch-"

# Keys of the reference spec that belong to that SAE, not to its architecture comparison copies.
_NOT_COPIED = ("architecture", "extra", "init_from", "eval_sets")
_RESIDUAL_DEFAULTS = {"architecture": "residual_batchtopk", "d_sae": 512, "k": 5}


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return config.get(key) or {}


def architectures_enabled(config: Mapping[str, Any]) -> bool:
    return config.get("architectures") is not None


def _reference(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    ref = str(_section(config, "architectures").get("reference", "gsae"))
    saes = config.get("saes") or {}
    if ref not in saes:
        raise ConfigError(
            f"architectures.reference: '{ref}' is not an SAE under saes: "
            f"(known: {', '.join(sorted(saes)) or 'none'})"
        )
    return ref, copy.deepcopy(dict(saes[ref]))


def _retrain_reference(config: Mapping[str, Any]) -> bool:
    """When `architectures.common` changes a key of the reference's spec, the reference's architecture is
    retrained under it too (``arch-<its architecture>``), so that every row of the table shares one training
    setup."""
    common = _section(config, "architectures").get("common") or {}
    _, ref_spec = _reference(config)
    return any(ref_spec.get(k, SAE_DEFAULTS.get(k)) != v for k, v in common.items())


def architecture_saes(config: Mapping[str, Any]) -> dict[str, str]:
    """{architecture label: registry name} of the study, in config order: the reference's architecture first
    (``topk`` for the default gsae: the reference SAE itself, or ``arch-topk`` when `architectures.common`
    changes its spec), then ``arch-<architecture>`` for each other listed one."""
    if not architectures_enabled(config):
        return {}
    ref, spec = _reference(config)
    ref_arch = str(spec.get("architecture", "topk"))
    out = {ref_arch: f"{ARCH_PREFIX}{ref_arch}" if _retrain_reference(config) else ref}
    for arch in _section(config, "architectures").get("names") or []:
        out.setdefault(str(arch), f"{ARCH_PREFIX}{arch}")
    return out


def architecture_eval_sets(config: Mapping[str, Any]) -> list[str]:
    """The eval sets of the study's table: `architectures.eval_sets`, else `evaluation.eval_sets`."""
    return list(_section(config, "architectures").get("eval_sets") or config["evaluation"]["eval_sets"])


def architecture_evaluations(config: Mapping[str, Any], saes: Mapping[str, Any]) -> dict[str, list[str]]:
    """{SAE: the table's eval sets} for every SAE of the study (the reference is defined elsewhere)."""
    return {sae: architecture_eval_sets(config) for sae in architecture_saes(config).values()}


def architecture_specs(
    config: Mapping[str, Any], defined: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The study's SAEs: ``arch-<architecture>`` specs, the reference's spec with another architecture."""
    if not architectures_enabled(config):
        return {}
    cfg = _section(config, "architectures")
    _, ref_spec = _reference(config)
    common = merge_spec({k: v for k, v in ref_spec.items() if k not in _NOT_COPIED}, cfg.get("common") or {})
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
        spec = merge_spec(
            {**copy.deepcopy(common), "architecture": arch, "extra": extra}, settings.get(arch) or {}
        )
        if arch in ("jumprelu", "relu"):  # matched L0: JumpReLU's L0 penalty target, ReLU's steered λ
            spec["extra"].setdefault("target_l0", k)
        if cfg.get("eval_sets"):
            spec["eval_sets"] = list(cfg["eval_sets"])
        out[f"{ARCH_PREFIX}{arch}"] = spec
    return out
