"""The MAIRA-2-style study's SAE and text set (pure Python: the workflow imports it at parse time).

The radlabels reports are the study's own corpus (``radlabels.reports``, written by its rule
``maira2_texts``), extracted by the core rule with ``maira2.tokens``; the rows MAIRA-2-style filtering keeps
(``radlabels.kept``, rule ``maira2_kept``: section headers, boilerplate, blanks and special tokens out) are
what the SAE ``maira2-matryoshka`` (Matryoshka BatchTopK, at ``maira2.layer``, default the run's
``model.layer``: 15 in the embedded default) is trained on by the core ``train_sae`` rule, as MAIRA-2's SAE
was trained on report tokens only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.sae_spec import merge_spec

CORPUS = "radlabels"
TEXTSET = f"{CORPUS}.reports"
KEPT_TEXTSET = f"{CORPUS}.kept"
SAE_NAME = "maira2-matryoshka"
BASE_SPEC: dict[str, Any] = {
    "architecture": "matryoshka",
    "d_sae": 2048,
    "k": 32,
    "lr": 0.0004,
    "batch_size": 512,
    "epochs": 3,
    "warmup_steps": 20,
}


def _cfg(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("maira2") or {}


def maira2_enabled(config: Mapping[str, Any]) -> bool:
    return config.get("maira2") is not None


def maira2_specs(
    config: Mapping[str, Any], defined: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    if not maira2_enabled(config):
        return {}
    cfg = _cfg(config)
    spec = merge_spec(dict(BASE_SPEC), cfg.get("sae") or {})
    # the core spliced evaluation needs a configured corpus's held-out split: the general corpus by default
    spec.setdefault("eval_sets", [str(cfg.get("eval_set", "general"))])
    layer = cfg.get("layer")
    spec.update(train_on=KEPT_TEXTSET, layer=int(config["model"]["layer"] if layer is None else layer))
    return {SAE_NAME: spec}


def maira2_budget(config: Mapping[str, Any], textset: str) -> int | None:
    if maira2_enabled(config) and textset == TEXTSET:
        return int(_cfg(config).get("tokens", 65536))
    return None


def maira2_corpora(config: Mapping[str, Any]) -> list[str]:
    return [CORPUS] if maira2_enabled(config) else []
