"""The boosting study's table: base, residual, finetune and stacked SAEs on each subdomain and on general
text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

BOOSTING_COLUMNS = [
    "subdomain",
    "method",
    "sae",
    "domain_explained_variance",
    "domain_delta_ce",
    "domain_ev_gain_pct",
    "general_explained_variance",
    "general_delta_ce",
    "general_retention_pct",
    "domain_l0",
    "general_l0",
]
STACKED_LABEL = "base + all residuals"


def boosting_table(
    evals: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    base: str,
    residuals: Mapping[str, str],
    finetunes: Mapping[str, str],
    stacked: str | None,
    general: str,
) -> pd.DataFrame:
    """Base vs base + residual vs full finetune per subdomain, and the stacked base + every residual.

    `evals[name][eval_set]` is an evaluation row (saeflow.evaluate.EvalResult.row); `residuals` / `finetunes`
    map subdomain -> name. domain_ev_gain_pct = 100·(EV_domain − EV_domain(base)) / EV_domain(base);
    general_retention_pct = 100·EV_general / EV_general(base). The stacked row (subdomain "all") averages the
    domain columns over the subdomains.
    """
    subs = list(residuals)
    base_general = evals[base][general]

    def row(sub: str, method: str, name: str, domain_evs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        base_dom = [evals[base][s] for s in (subs if sub == "all" else [sub])]
        dom_ev = _mean(e["explained_variance"] for e in domain_evs)
        base_ev = _mean(e["explained_variance"] for e in base_dom)
        gen = evals[name][general]
        return {
            "subdomain": sub,
            "method": method,
            "sae": name,
            "domain_explained_variance": dom_ev,
            "domain_delta_ce": _mean(e["delta_ce"] for e in domain_evs),
            "domain_ev_gain_pct": 100 * (dom_ev - base_ev) / abs(base_ev) if base_ev else float("nan"),
            "general_explained_variance": gen["explained_variance"],
            "general_delta_ce": gen["delta_ce"],
            "general_retention_pct": (
                100 * gen["explained_variance"] / base_general["explained_variance"]
                if base_general["explained_variance"]
                else float("nan")
            ),
            "domain_l0": _mean(e["l0"] for e in domain_evs),
            "general_l0": gen["l0"],
        }

    rows = []
    for sub in subs:
        rows.append(row(sub, "base", base, [evals[base][sub]]))
        rows.append(row(sub, "base + residual", residuals[sub], [evals[residuals[sub]][sub]]))
        if sub in finetunes:
            rows.append(row(sub, "full finetune", finetunes[sub], [evals[finetunes[sub]][sub]]))
    if stacked is not None:
        rows.append(row("all", STACKED_LABEL, stacked, [evals[stacked][s] for s in subs]))
    return pd.DataFrame(rows, columns=BOOSTING_COLUMNS)


def _mean(values: Iterable[float]) -> float:
    v = [float(x) for x in values]
    return sum(v) / len(v) if v else float("nan")
