"""The protein study's tables and figures: fidelity, concept coverage (SAE vs neurons vs random SAE),
steering."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

FIDELITY_COLUMNS = [
    "sae",
    "kind",
    "architecture",
    "k",
    "d_sae",
    "l0",
    "fvu",
    "ce_clean",
    "ce_sae",
    "ce_zero",
    "ce_mean",
    "recovered_zero_pct",
    "recovered_mean_pct",
    "n_scored",
]
CONCEPT_SUMMARY = [
    "sae",
    "kind",
    "n_units",
    "concepts_covered",
    "n_concepts",
    "latents_f1_gt_0.5",
    "mean_best_f1",
]
STEERING_KEYS = ["method", "sae", "n_latents", "strength"]
STEERING_METRICS = [
    "helix_fraction",
    "motif_rate",
    "log_likelihood",
    "composition_kl",
    "low_complexity",
    "longest_homopolymer",
    "pairwise_identity",
]


def fidelity_table(
    summaries: Sequence[Mapping[str, Any]], specs: Mapping[str, Mapping[str, Any]]
) -> pd.DataFrame:
    """One row per unit set: L0 and FVU on test residues, CE clean / spliced / zero / mean, % CE recovered."""
    rows = []
    for s in summaries:
        spec = specs.get(s["unit"], {})
        rows.append(
            {
                "sae": s["unit"],
                "kind": s["kind"],
                "architecture": spec.get("architecture"),
                "k": spec.get("k"),
                "d_sae": spec.get("d_sae") or s["n_units"],
                "l0": s["l0"],
                "fvu": s["fvu"],
                "ce_clean": s["ce_clean"],
                "ce_sae": s["ce_sae"],
                "ce_zero": s["ce_zero"],
                "ce_mean": s["ce_mean"],
                "recovered_zero_pct": 100 * s["recovered_zero"],
                "recovered_mean_pct": 100 * s["recovered_mean"],
                "n_scored": s["n_scored"],
            }
        )
    return pd.DataFrame(rows, columns=FIDELITY_COLUMNS)


def concepts_table(summaries: Sequence[Mapping[str, Any]], best: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per unit set: concepts covered at test F1 > 0.5, latents with test F1 > 0.5, then the best
    test F1 (latent and threshold picked on validation chains) of every concept as `f1_<concept>` columns."""
    rows = []
    for s in summaries:
        b = best[s["unit"]]
        row = {
            "sae": s["unit"],
            "kind": s["kind"],
            "n_units": s["n_units"],
            "concepts_covered": int(b["covered"].sum()),
            "n_concepts": len(b),
            "latents_f1_gt_0.5": s["latents_f1_gt_0.5"],
            "mean_best_f1": float(b["test_f1"].mean()),
        }
        row.update({f"f1_{c}": float(f) for c, f in zip(b["concept"], b["test_f1"], strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def steering_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials aggregated over seeds per method × SAE × n_latents × strength: mean target rates and naturalness
    (helix_fraction_sd beside the mean), trials and motif-matching trials."""
    df = trials.copy()
    df["motif_hit"] = df["motif_rate"] > 0
    g = df.groupby(STEERING_KEYS, sort=False, dropna=False)
    out = g[STEERING_METRICS].mean()
    out.insert(1, "helix_fraction_sd", g["helix_fraction"].std(ddof=0))
    out["trials"] = g.size()
    out["motif_trials"] = g["motif_hit"].sum().astype(int)
    out = out.reset_index()
    order = {"strength 0": 0, "SAE latents": 1, "random latents": 2, "difference of means": 3}
    out["_o"] = out["method"].map(order).fillna(9)
    return out.sort_values(["_o", "sae", "n_latents", "strength"]).drop(columns="_o").reset_index(drop=True)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fidelity_figure(fid: pd.DataFrame, path: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for _, r in fid.iterrows():
        ax.scatter(r["l0"], r["recovered_zero_pct"], s=40, marker="s" if r["kind"] != "sae" else "o")
        ax.annotate(
            r["sae"],
            (r["l0"], r["recovered_zero_pct"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel("L0 (active units per residue, test chains)")
    ax.set_ylabel("% CE recovered (vs zero-ablation)")
    ax.axhline(100, color="grey", lw=0.5)
    ax.set_title("Protein LM: fidelity vs L0")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def concepts_figure(table: pd.DataFrame, path: str) -> None:
    plt = _plt()
    cols = [c for c in table.columns if c.startswith("f1_")]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(cols) + 2), 3.8))
    width = 0.8 / max(len(table), 1)
    x = np.arange(len(cols))
    for i, (_, r) in enumerate(table.iterrows()):
        ax.bar(x + i * width, [r[c] for c in cols], width, label=r["sae"])
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x + 0.4 - width / 2, [c[3:] for c in cols], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("best test F1 (picked on val)")
    ax.set_title("Best F1 per concept: SAEs vs neurons vs random SAE")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def steering_figure(table: pd.DataFrame, path: str) -> None:
    """Dose-response: helix fraction vs strength (left), composition KL and low-complexity share (right)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    base = table[table["method"] == "strength 0"]
    nmax = (
        table.loc[table["method"] == "SAE latents", "n_latents"].max()
        if (table["method"] == "SAE latents").any()
        else 0
    )
    for (method, sae, n), grp in table.groupby(["method", "sae", "n_latents"], sort=False):
        if method == "strength 0" or (method != "difference of means" and n != nmax):
            continue
        grp = pd.concat([base, grp]).sort_values("strength")
        label = f"{method} ({sae}, n={n})" if method != "difference of means" else method
        for ax, metric in zip(axes, ("helix_fraction", "composition_kl", "low_complexity"), strict=True):
            ax.plot(
                grp["strength"],
                grp[metric],
                marker="o",
                label=label,
                ls="-" if method == "SAE latents" else "--",
            )
    for ax, label in zip(
        axes,
        ("target: helix fraction (oracle)", "naturalness: composition KL (nats)", "low-complexity share"),
        strict=True,
    ):
        ax.set_xlabel("strength (× latent max)")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
