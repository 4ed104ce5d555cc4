"""The SSAE table (one row per subdomain × selection × objective × sparsity, plus the GSAE) and its
figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from saeflow.io import atomic_path, read_json
from saeflow.tables import read_sae_columns

SSAE_COLUMNS = [
    "subdomain",
    "selection",
    "objective",
    "tilt",
    "sparsity_key",
    "sparsity",
    "k",
    "sae",
    "l0",
    "fvu",
    "explained_variance",
    "perplexity_clean_domain",
    "perplexity_sae_domain",
    "delta_ce_domain",
    "ce_loss_score_domain",
    "perplexity_clean_general",
    "perplexity_sae_general",
    "delta_ce_general",
    "fvu_general",
    "general_fvu_gain",
    "tail_recall_rare",
    "captured_types",
    "coverage_rare",
    "fvu_rare",
    "retrieval_precision",
    "retrieval_recall",
    "retrieval_token_precision",
    "recall_ceiling",
    "selection_tokens",
]


def ssae_row(
    variant: dict[str, Any], domain_eval: dict, general_eval: dict, concepts: dict, selection: dict | None
) -> dict[str, Any]:
    """One table row from a variant's evaluation JSONs, concept report and selection record."""
    quality = (selection or {}).get("quality") or {}
    return {
        **{
            k: variant[k] for k in ("subdomain", "selection", "objective", "tilt", "sparsity_key", "sparsity")
        },
        "k": variant["sparsity"] if variant["sparsity_key"] == "k" else None,
        "sae": variant["name"],
        "l0": domain_eval["l0"],
        "fvu": domain_eval["fvu"],
        "explained_variance": domain_eval["explained_variance"],
        "perplexity_clean_domain": domain_eval["perplexity_clean"],
        "perplexity_sae_domain": domain_eval["perplexity_sae"],
        "delta_ce_domain": domain_eval["delta_ce"],
        "ce_loss_score_domain": domain_eval["ce_loss_score"],
        "perplexity_clean_general": general_eval["perplexity_clean"],
        "perplexity_sae_general": general_eval["perplexity_sae"],
        "delta_ce_general": general_eval["delta_ce"],
        "fvu_general": general_eval["fvu"],
        "tail_recall_rare": concepts.get("tail_recall_rare"),
        "captured_types": concepts.get("n_captured_total"),
        "coverage_rare": concepts.get("coverage_rare"),
        "fvu_rare": concepts.get("fvu_rare"),
        "retrieval_precision": quality.get("precision"),
        "retrieval_recall": quality.get("recall"),
        "retrieval_token_precision": quality.get("token_precision"),
        "recall_ceiling": quality.get("recall_ceiling"),
        "selection_tokens": (selection or {}).get("n_tokens"),
    }


def ssae_table(
    entries: Sequence[dict[str, Any]], columns: Mapping[str, Sequence[str | Path]] | None = None
) -> pd.DataFrame:
    """entries: dicts with name, subdomain, selection, objective, tilt, sparsity_key, sparsity and `paths`
    holding the JSON paths 'domain_eval', 'general_eval', 'concepts' and (optional) 'selection'. `columns`:
    {SAE: per-SAE column files other studies publish} (e.g. autointerp scores), appended to its rows."""
    rows, extra = [], []
    for v in entries:
        p = v["paths"]
        sel = read_json(p["selection"]) if p.get("selection") else None
        rows.append(
            ssae_row(
                v, read_json(p["domain_eval"]), read_json(p["general_eval"]), read_json(p["concepts"]), sel
            )
        )
        extra.append(read_sae_columns((columns or {}).get(v["name"], ())))
    df = with_general_gain(pd.DataFrame(rows, columns=SSAE_COLUMNS))
    df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    order = {"gsae": 0, "domain": 1, "dense": 2, "dense_tracin": 3, "bm25": 4, "bm25_tracin": 5, "random": 6}
    df["_o"] = df["selection"].map(lambda s: order.get(s, 9))
    return (
        df.sort_values(["subdomain", "_o", "selection", "objective", "sparsity"])
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def with_general_gain(df: pd.DataFrame) -> pd.DataFrame:
    """`general_fvu_gain`: each SAE's relative general-text FVU improvement over its subdomain's GSAE row,
    (fvu_general(GSAE) − fvu_general) / fvu_general(GSAE). On the `random` selection (the GSAE finetuned on
    more general text) it is the convergence control: at most 1% for a GSAE trained to a plateau."""
    base = df[df["selection"] == "gsae"].set_index("subdomain")["fvu_general"]
    ref = df["subdomain"].map(base)
    return df.assign(general_fvu_gain=(ref - df["fvu_general"]) / ref)


RETRIEVAL_COLUMNS = [
    "subdomain",
    "method",
    "precision",
    "recall",
    "token_precision",
    "recall_ceiling",
    "n_documents",
    "n_tokens",
    "budget_tokens",
    "pool_general",
    "pool_domain",
    "seeds",
]
"""No wall-clock column: two identical runs give byte-identical tables (timings are in benchmarks/)."""


def retrieval_table(selection_paths: dict[str, dict[str, str]]) -> pd.DataFrame:
    """One row per subdomain x retrieval method from the selection JSONs: precision/recall at the budget."""
    rows = []
    for sub, methods in selection_paths.items():
        for method, path in methods.items():
            rec = read_json(path)
            q = rec["quality"]
            rows.append(
                {
                    "subdomain": sub,
                    "method": method,
                    **{k: q.get(k) for k in RETRIEVAL_COLUMNS[2:6]},
                    "n_documents": rec["n_documents"],
                    "n_tokens": rec["n_tokens"],
                    "budget_tokens": rec["budget_tokens"],
                    "pool_general": rec["pool"]["general_documents"],
                    "pool_domain": rec["pool"]["domain_documents"],
                    "seeds": rec["pool"]["seeds"],
                }
            )
    return pd.DataFrame(rows, columns=RETRIEVAL_COLUMNS)


def concept_bins_frame(entries: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Long table of per-bin tail recall and coverage: one row per entry (see ssae_table) x frequency bin."""
    rows = []
    for v in entries:
        rep = read_json(v["paths"]["concepts"])
        for j, b in enumerate(rep["bins"]):
            rows.append(
                {
                    **{k: v[k] for k in ("subdomain", "selection", "objective", "sparsity_key", "sparsity")},
                    "sae": v["name"],
                    "bin": j,
                    **b,
                }
            )
    return pd.DataFrame(rows)


def _series_label(selection: str, objective: str) -> str:
    return "GSAE" if selection == "gsae" else f"{selection} / {objective}"


def _save(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def pareto_figure(df: pd.DataFrame, subdomain: str, path: str | Path) -> None:
    """Domain perplexity (SAE spliced in) against L0, one line per selection/objective over the sparsity
    sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = df[df.subdomain == subdomain]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (sel, obj), g in d.groupby(["selection", "objective"], sort=False):
        g = g.sort_values("l0")
        style = (
            {"marker": "*", "markersize": 12, "linestyle": "none", "color": "black"}
            if sel == "gsae"
            else {"marker": "o", "linestyle": "--" if obj != "erm" else "-"}
        )
        ax.plot(g.l0, g.perplexity_sae_domain, label=_series_label(sel, obj), **style)
    if len(d):
        ax.axhline(d.perplexity_clean_domain.iloc[0], color="grey", linestyle=":", label="clean model")
    ax.set_xlabel("L0 (mean active latents per token, domain held-out)")
    ax.set_ylabel(f"perplexity with SAE spliced in ({subdomain} held-out)")
    ax.set_title(f"SSAE sparsity/fidelity trade-off: {subdomain}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    _save(fig, path)


def tail_recall_figure(
    bins: pd.DataFrame, subdomain: str, path: str | Path, sparsity: float | None = None
) -> None:
    """Per general-corpus frequency bin (rarest first): the captured share of token types (left) and the FVU
    of the bin's domain tokens (right), one line per variant at one sparsity setting (all settings when
    None); the GSAE is always shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = bins[bins.subdomain == subdomain]
    if sparsity is not None:
        d = d[(d.sparsity == sparsity) | (d.selection == "gsae")]
    fig, (ax, ax_fvu) = plt.subplots(1, 2, figsize=(12.0, 4.4))
    labels: list[str] = []
    for (sel, obj, key, value), g in d.groupby(
        ["selection", "objective", "sparsity_key", "sparsity"], sort=False
    ):
        g = g.sort_values("bin")
        labels = list(g.label)
        style = (
            {"color": "black", "linewidth": 2.5}
            if sel == "gsae"
            else {"linestyle": "--" if obj != "erm" else "-", "marker": "o"}
        )
        ax.plot(g.bin, g.recall, label=f"{_series_label(sel, obj)} ({key}={value:g})", **style)
        if "fvu" in g:
            ax_fvu.plot(g.bin, g.fvu, **style)
    for a in (ax, ax_fvu):
        a.set_xticks(range(len(labels)), labels)
        a.set_xlabel("token-type frequency in the general corpus (occurrences; rarest first)")
        a.grid(alpha=0.3)
    ax.set_ylabel("tail-concept recall (share of token types captured)")
    ax.set_title(f"Tail-concept recall on {subdomain} held-out text")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, ncol=2)
    ax_fvu.set_ylabel("FVU of the bin's tokens (lower is better)")
    ax_fvu.set_title(f"Reconstruction by token frequency on {subdomain}")
    _save(fig, path)
