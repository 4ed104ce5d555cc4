"""The interpret study's analysis, importable without Snakemake: its text set, the cross-SAE tables, and the
choice of steering targets. One SAE's explanations, scores and dashboard are core
(saeflow.interpret.pipeline)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from saeflow.interpret.explainers import Explanation
from saeflow.interpret.scorers import pattern_items
from saeflow.io import read_jsonl, write_jsonl

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- the text set


def interleave_documents(sources: Sequence[Iterable[dict]]) -> list[dict]:
    """Documents of several corpora, round robin (one of each in turn), ids prefixed by the source's index so
    they stay unique; keeps `id` and `text`."""
    iters = [iter(s) for s in sources]
    out: list[dict] = []
    while iters:
        alive = []
        for i, it in enumerate(iters):
            doc = next(it, None)
            if doc is None:
                continue
            out.append({"id": f"{i}:{doc['id']}", "text": doc["text"]})
            alive.append(it)
        iters = alive
    return out


def write_contexts_texts(heldout: Sequence[str | Path], out: str | Path) -> int:
    return write_jsonl(out, interleave_documents([list(read_jsonl(p)) for p in heldout]))


# --------------------------------------------------------------------------------------------- tables


def summarise(
    scores: pd.DataFrame, threshold: float = 0.8, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per SAE: mean detection balanced accuracy and AUROC beside the shuffled control, the share of
    latents with detection balanced accuracy >= threshold (and the control's), mean embedding AUROC beside its
    control."""
    rows = []
    saes = list(order) if order is not None else list(dict.fromkeys(scores.sae))
    for sae in saes:
        g = scores[scores.sae == sae]
        row: dict[str, Any] = {"sae": sae, "n_latents": int(g.latent.nunique())}
        for scorer, metrics in (
            ("detection", ("balanced_accuracy", "auroc")),
            ("fuzzing", ("balanced_accuracy",)),
            ("embedding", ("auroc",)),
        ):
            s = g[g.scorer == scorer]
            if s.empty:
                continue
            for metric in metrics:
                short = "bacc" if metric == "balanced_accuracy" else metric
                row[f"{scorer}_{short}"] = s[metric].astype(float).mean()
                row[f"{scorer}_{short}_control"] = s[f"control_{metric}"].astype(float).mean()
            if scorer == "detection":
                row[f"detection_share_ge_{threshold:g}"] = float(
                    (s.balanced_accuracy.astype(float) >= threshold).mean()
                )
                row[f"detection_share_ge_{threshold:g}_control"] = float(
                    (s.control_balanced_accuracy.astype(float) >= threshold).mean()
                )
        rows.append(row)
    return pd.DataFrame(rows)


COLUMN_PREFIX = "autointerp_"


def autointerp_columns(scores: pd.DataFrame, threshold: float = 0.8) -> dict[str, float]:
    """One SAE's scores as the per-SAE columns other tables show: its :func:`summarise` row (detection,
    embedding and the shuffled control), names prefixed ``autointerp_``."""
    row = summarise(scores.assign(sae="_"), threshold).iloc[0].to_dict()
    row.pop("sae")
    return {f"{COLUMN_PREFIX}{k}": (int(v) if k == "n_latents" else float(v)) for k, v in row.items()}


# ------------------------------------------------------------------------------------------- steering targets

_WORD = re.compile(r"^[a-z][a-z'-]{2,}$")


def steering_targets(scores: pd.DataFrame, n: int) -> dict[str, tuple[int, list[str]]]:
    """Up to n {concept: (latent, terms)} from the best detection scores whose explanation is not weak and
    whose first token is a word (the concept the latent is steered toward; terms = that word)."""
    det = scores[(scores.scorer == "detection") & ~scores.explanation.str.startswith("weak")]
    det = det.sort_values(["balanced_accuracy", "latent"], ascending=[False, True])
    out: dict[str, tuple[int, list[str]]] = {}
    for r in det.itertuples(index=False):
        items = pattern_items(Explanation(int(r.latent), str(r.explanation), "token"))
        if not items or not _WORD.match(items[0][0]) or items[0][0] in out:
            continue
        out[items[0][0]] = (int(r.latent), [items[0][0]])
        if len(out) >= n:
            break
    return out


def steering_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean mention rate, Δ log-prob, firing, perplexity and similarity per (concept, control, alpha)."""
    from saeflow.interpret.steering import dose_response

    if rows.empty:
        return pd.DataFrame(
            columns=[
                "concept",
                "control",
                "alpha",
                "mention",
                "delta_logprob",
                "fires",
                "perplexity",
                "similarity",
            ]
        )
    return dose_response(rows)
