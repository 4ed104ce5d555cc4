"""The MAIRA-2-style study's tables, importable without Snakemake: per-finding best latents and the
summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from saeflow.corpus import hash_unit
from saeflow.interpret.scorers import concept_auroc
from saeflow.studies.maira2.data import Radlabels


def report_labels(data: Radlabels, doc_ids: Sequence[str]) -> np.ndarray:
    """[len(doc_ids), n_findings] "definitely present" labels of the reports an activation set holds, in its
    order."""
    row = {r.id: i for i, r in enumerate(data.reports)}
    y = data.label_matrix()
    return y[[row[str(d)] for d in doc_ids]]


def findings_table(
    doc_max: np.ndarray,
    labels: np.ndarray,
    findings: Sequence[str],
    min_positives: int,
    explanations: Mapping[int, str] | None = None,
    select: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per finding with at least `min_positives` positive reports (and one negative): its best latent's AUROC,
    best first, with that latent's explanation when given.

    With `select` (bool per report) the best latent is chosen on the selected reports (`auroc_selection`, an
    optimistic in-sample figure) and `auroc` is that latent's AUROC on the other, held-out reports; each half
    needs `min_positives` positives."""
    if select is None:
        df = concept_auroc(doc_max, labels, findings)
        df = df[(df.n_pos >= min_positives) & (df.n_neg > 0)].copy()
    else:
        select = np.asarray(select, dtype=bool)
        chosen = concept_auroc(doc_max[select], labels[select], findings)
        test_x, test_y = doc_max[~select], np.asarray(labels, dtype=bool)[~select]
        rows = []
        for c, row in chosen.iterrows():
            pos = test_y[:, c]
            if row.best_latent < 0 or row.n_pos < min_positives or pos.sum() < min_positives or pos.all():
                continue
            rows.append(
                {
                    "concept": row.concept,
                    "best_latent": int(row.best_latent),
                    "auroc": auroc(test_x[:, int(row.best_latent)], pos),
                    "auroc_selection": float(row.auroc),
                    "n_pos": int(pos.sum()),
                    "n_neg": int((~pos).sum()),
                }
            )
        columns = ["concept", "best_latent", "auroc", "auroc_selection", "n_pos", "n_neg"]
        df = pd.DataFrame(rows, columns=columns)
    if explanations is not None:
        df["explanation"] = [explanations.get(int(lat), "") for lat in df.best_latent]
    return df.sort_values(["auroc", "concept"], ascending=[False, True]).reset_index(drop=True)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC of `scores` for the `positive` rows (ties count one half)."""
    return float(concept_auroc(np.asarray(scores, float)[:, None], positive[:, None], ["x"]).auroc.iloc[0])


def selection_half(doc_ids: Sequence[str], seed: int) -> np.ndarray:
    """The reports that choose each finding's latent: a seeded hash of the id below 0.5 (stable when reports
    are added)."""
    return np.array([hash_unit(seed, "maira2-findings", str(d)) < 0.5 for d in doc_ids], dtype=bool)


def summary_table(
    *,
    filtering: pd.DataFrame,
    scores: pd.DataFrame,
    findings: pd.DataFrame,
    threshold: float,
    n_live: int,
    d_sae: int,
) -> pd.DataFrame:
    det = scores[scores.scorer == "detection"]
    emb = scores[scores.scorer == "embedding"]
    kept = filtering.loc[filtering.reason == "kept", "share"]
    rows = [
        ("tokens kept after filtering (share)", float(kept.iloc[0]) if len(kept) else float("nan")),
        ("live latents (share of d_sae)", n_live / max(d_sae, 1)),
        ("latents sampled", float(det.latent.nunique())),
        ("detection balanced accuracy", det.balanced_accuracy.mean()),
        ("detection balanced accuracy, shuffled control", det.control_balanced_accuracy.mean()),
        (
            f"share of latents with detection >= {threshold:g}",
            float((det.balanced_accuracy >= threshold).mean()),
        ),
        ("same, shuffled control", float((det.control_balanced_accuracy >= threshold).mean())),
        ("embedding AUROC", emb.auroc.mean() if len(emb) else float("nan")),
        ("embedding AUROC, shuffled control", emb.control_auroc.mean() if len(emb) else float("nan")),
        ("findings scored", float(len(findings))),
        (
            "median best-latent AUROC over findings",
            findings.auroc.median() if len(findings) else float("nan"),
        ),
        (
            f"share of findings with best-latent AUROC >= {threshold:g}",
            float((findings.auroc >= threshold).mean()) if len(findings) else float("nan"),
        ),
        (
            f"distinct latents mapped to a finding (AUROC >= {threshold:g}), share of live latents",
            findings.loc[findings.auroc >= threshold, "best_latent"].nunique() / max(n_live, 1),
        ),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])
