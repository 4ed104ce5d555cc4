"""The recsys study's steps as library calls (the scripts/recsys_*.py adapters only bind Snakemake's files):
data from the config section, SASRec training, the SAE training set, the model / SAE / concept / ablation
tables and the two figures."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from saeflow.activations import ActivationStore
from saeflow.errors import DataError
from saeflow.io import atomic_path
from saeflow.models.sasrec import SASRec, SASRecConfig, SASRecTrainConfig, save_sasrec, train_sasrec
from saeflow.sae import SAEConfig, make_sae
from saeflow.studies.recsys.ablation import Edit, ablation_table, matched_frequency_controls
from saeflow.studies.recsys.data import (
    Interactions,
    ItemMeta,
    MetaConfig,
    RecDataConfig,
    Split,
    leave_one_out,
    load_interactions,
    load_item_meta,
)
from saeflow.studies.recsys.dictionary import (
    DictionaryConfig,
    TfidfConfig,
    TfidfExplainer,
    build_dictionary,
    prefix_histories,
    sae_codes,
    sequence_terms,
)
from saeflow.studies.recsys.metrics import (
    evaluate_scores,
    popularity_scores,
    ranking_metrics,
    sample_negatives,
    sampled_ranks,
)
from saeflow.studies.recsys.reconstruction import reconstruction_quality, write_sasrec_activations

TRAINING_INFO = "training.json"


class RecData(NamedTuple):
    interactions: Interactions
    meta: ItemMeta
    split: Split


def load_data(data: Mapping[str, Any]) -> RecData:
    """The `recsys.data` section with `inter` / `item` resolved to files."""
    rec = RecDataConfig(
        data["user_field"], data["item_field"], data["time_field"], int(data["min_user_interactions"])
    )
    inter = load_interactions(data["inter"], rec)
    meta = load_item_meta(
        data["item"],
        inter,
        MetaConfig(data["title_field"], data["year_field"], data["genre_field"]),
        item_field=data["item_field"],
    )
    return RecData(inter, meta, leave_one_out(inter.sequences))


# ----------------------------------------------------------------------------------------------- model
def train_model(
    data: RecData,
    model: Mapping[str, Any],
    train: Mapping[str, Any],
    seed: int,
    out_dir: str | Path,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train SASRec (early stopping on validation NDCG@10) and save it with its training record."""
    cfg = SASRecConfig.from_dict({**dict(model), "n_items": data.interactions.n_items})
    tcfg = SASRecTrainConfig(**dict(train), seed=int(seed))
    result = train_sasrec(cfg, tcfg, data.split.train, data.split.valid_targets, log=log)
    info = {
        "best_epoch": result.best_epoch,
        "best_valid_ndcg10": result.best_valid_ndcg10,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 2),
        "n_users": len(data.split.train),
        "n_items": data.interactions.n_items,
        "n_interactions": data.interactions.n_interactions,
    }
    save_sasrec(result.model.net, out_dir, info)
    with atomic_path(Path(out_dir) / TRAINING_INFO) as tmp:
        tmp.write_text(json.dumps({**info, "history": result.history}, indent=2))
    return info


def write_activations(model: SASRec, data: RecData, out_dir: str | Path):
    """The SAE training set: the scoring state at every position of each user's history (test histories:
    everything before the held-out item), float32."""
    return write_sasrec_activations(
        model, data.split.test_histories, list(data.interactions.users), out_dir, dtype=torch.float32
    )


MODEL_COLUMNS = ["method", "protocol", "n_users", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20"]


def model_table(model: SASRec, data: RecData, negatives: int = 100, seed: int = 0) -> pd.DataFrame:
    """Test HR/NDCG@5/10/20 of SASRec and the popularity baseline: full ranking (history excluded) and the
    target against `negatives` sampled unseen items (SASRec's protocol)."""
    hist, tgt = data.split.test_histories, data.split.test_targets
    n = data.interactions.n_items
    scores = {
        "SASRec": model.scores(model.last_states(hist)),
        "Popularity": popularity_scores(hist, n).expand(len(hist), -1).clone(),
    }
    neg = sample_negatives(data.interactions.sequences, n, negatives, seed)
    rows = []
    for method, s in scores.items():
        rows.append({"method": method, "protocol": "full ranking", **_row(evaluate_scores(s, hist, tgt))})
        rows.append(
            {
                "method": method,
                "protocol": f"{negatives} sampled negatives",
                **_row(ranking_metrics(sampled_ranks(s, tgt, neg))),
            }
        )
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def _row(m) -> dict[str, Any]:
    return {"n_users": m.n_users, **m.row()}


# ----------------------------------------------------------------------------------------------- SAEs
def untrained_sae(d_in: int, d_sae: int, k: int, mean_norm: float, seed: int = 0):
    """The untrained control: a TopK SAE at its initialisation, its input scaled like a trained one's
    (E‖x‖ = √d)."""
    sae = make_sae(SAEConfig("topk", d_in=d_in, d_sae=d_sae, k=k), seed=seed)
    sae.set_input_scale_(math.sqrt(d_in) / max(mean_norm, 1e-12))
    return sae.eval()


def store_rows(store: ActivationStore, max_rows: int | None = None) -> torch.Tensor:
    """[N, d] the first `max_rows` rows (all when None) in storage order."""
    parts, n = [], 0
    for rows in store.iter_rows():
        parts.append(rows.acts)
        n += len(rows.acts)
        if max_rows is not None and n >= max_rows:
            break
    x = torch.cat(parts)
    return x if max_rows is None else x[:max_rows]


SAE_COLUMNS = [
    "sae",
    "kind",
    "k",
    "d_sae",
    "fvu",
    "l0",
    "dead_fraction",
    "ndcg10",
    "hr10",
    "ndcg10_recon",
    "hr10_recon",
    "ndcg10_kept",
    "hr10_kept",
    "n_tokens",
]


@torch.no_grad()
def sae_table(
    model: SASRec, data: RecData, states: torch.Tensor, saes: Mapping[str, tuple[str, Any]]
) -> pd.DataFrame:
    """RecSAE's model-selection table: FVU, L0 and dead share over every stored state; NDCG@10 / HR@10 from
    the reconstructed last state (error dropped) and their share of the model's own. `saes`: name -> (kind,
    SAE)."""
    rows = []
    for name, (kind, sae) in saes.items():
        r = reconstruction_quality(
            sae, states.split(4096), model, data.split.test_histories, data.split.test_targets
        )
        rows.append({"sae": name, "kind": kind, "k": sae.cfg.k, "d_sae": sae.cfg.d_sae, **r._asdict()})
    return pd.DataFrame(rows, columns=SAE_COLUMNS)


# ----------------------------------------------------------------------------------------------- concepts
def dictionary_for(
    states: torch.Tensor,
    data: RecData,
    max_len: int,
    sae=None,
    *,
    recent: int = 20,
    n_terms: int = 5,
    n_explain: int = 5,
    n_heldout: int = 5,
    n_random: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """The concept dictionary of an SAE's latents (or, with sae None, of the raw neurons) over the stored rows
    `states` (the first rows of the activation set: each a prefix of a user's history)."""
    hist = prefix_histories(data.split.test_histories, max_len)[: len(states)]
    if len(hist) != len(states):
        raise DataError(f"dictionary: {len(states)} stored rows but {len(hist)} history prefixes")
    acts = states.float() if sae is None else sae_codes(sae, states.float()).detach()
    explainer = TfidfExplainer(sequence_terms(hist, data.meta, recent), TfidfConfig(n_terms=n_terms))
    cfg = DictionaryConfig(n_explain=n_explain, n_heldout=n_heldout, n_random=n_random, seed=seed)
    table = build_dictionary(acts, explainer, cfg).table
    return table.rename(columns={"unit": "latent"})


CONCEPT_COLUMNS = [
    "units",
    "kind",
    "n_units",
    "n_explained",
    "mean_confidence",
    "share_ge_0.8",
    "share_ge_0.9",
    "n_ge_0.8",
    "n_ge_0.9",
    "mean_recall",
    "mean_precision",
    "genre_share",
]


def concepts_table(dicts: Mapping[str, tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Per unit set (name -> (kind, latent_dictionary)): mean confidence and the share of explained units at
    or above 0.8 / 0.9 (RecSAE's summary), over the units that could be sampled."""
    rows = []
    for name, (kind, d) in dicts.items():
        s = d[d.sampled.astype(bool)]
        c = s.confidence.astype(float)
        rows.append(
            {
                "units": name,
                "kind": kind,
                "n_units": len(d),
                "n_explained": len(s),
                "mean_confidence": c.mean() if len(s) else float("nan"),
                "share_ge_0.8": (c >= 0.8).mean() if len(s) else float("nan"),
                "share_ge_0.9": (c >= 0.9).mean() if len(s) else float("nan"),
                "n_ge_0.8": int((c >= 0.8).sum()),
                "n_ge_0.9": int((c >= 0.9).sum()),
                "mean_recall": s.recall.astype(float).mean(),
                "mean_precision": s.precision.astype(float).mean(),
                "genre_share": (s.genre.fillna("").astype(str) != "").mean() if len(s) else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=CONCEPT_COLUMNS)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _plt().close(fig)


def confidence_figure(dicts: Mapping[str, tuple[str, pd.DataFrame]], path: str | Path) -> None:
    """Histogram (density) of concept confidence per unit set: SAEs vs neurons vs the untrained SAE."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    bins = np.linspace(0, 1, 12)
    for name, (kind, d) in dicts.items():
        c = d.confidence[d.sampled.astype(bool)].astype(float).to_numpy()
        if len(c):
            ax.hist(
                c,
                bins=bins,
                density=True,
                histtype="step",
                linewidth=1.6 if kind == "sae" else 1.2,
                linestyle="-" if kind == "sae" else "--",
                label=f"{name} (mean {c.mean():.3f}, n={len(c)})",
            )
    ax.axvline(0.8, color="grey", linestyle=":")
    ax.set_xlabel("concept confidence (RecSAE formula, TF-IDF explainer)")
    ax.set_ylabel("density")
    ax.set_title("Concept confidence: SAE latents vs raw neurons vs untrained SAE")
    ax.legend(fontsize=7)
    _save(fig, path)


# ----------------------------------------------------------------------------------------------- ablation
def choose_edits(
    sae_dict: pd.DataFrame,
    neuron_dict: pd.DataFrame,
    *,
    min_confidence: float = 0.8,
    max_units: int = 20,
    seed: int = 0,
) -> list[Edit]:
    """Concept latents (confidence >= min_confidence, a genre concept; highest confidence first), one random
    latent of matched frequency per concept latent (measured on the same genre), and as many raw neurons with
    a genre concept (highest confidence first)."""

    def ranked(d, threshold):
        d = d[d.sampled.astype(bool) & (d.genre.fillna("").astype(str) != "")]
        d = d[d.confidence.astype(float) >= threshold]
        return d.sort_values(["confidence", "frequency"], ascending=[False, False], kind="stable")

    concept = ranked(sae_dict, min_confidence).head(max_units)
    edits = [Edit("latent", int(r.latent), str(r.genre), "concept latent") for r in concept.itertuples()]
    if not edits:
        return []
    freq = torch.as_tensor(sae_dict.sort_values("latent").frequency.to_numpy(dtype=float))
    controls = matched_frequency_controls(freq, [e.unit for e in edits], seed=seed)
    edits += [
        Edit("latent", c, e.genre, "random latent (matched frequency)") for c, e in zip(controls, edits)
    ]
    neurons = ranked(neuron_dict, 0.0).head(len(concept))
    edits += [Edit("neuron", int(r.latent), str(r.genre), "raw neuron") for r in neurons.itertuples()]
    return edits


ABLATION_COLUMNS = [
    "role",
    "scale",
    "n_units",
    "mean_users",
    "share_before",
    "share_after",
    "delta_share",
    "delta_ndcg10",
    "delta_rank",
]


def ablation_summary(per_edit: pd.DataFrame) -> pd.DataFrame:
    """Mean over the edits of each role, per scale (units that are active on no user are left out)."""
    d = per_edit.dropna(subset=["scale"])
    if d.empty:
        return pd.DataFrame(columns=ABLATION_COLUMNS)
    g = d.groupby(["role", "scale"], sort=False)
    out = g.agg(
        n_units=("unit", "count"),
        mean_users=("n_users", "mean"),
        share_before=("share_before", "mean"),
        share_after=("share_after", "mean"),
        delta_share=("delta_share", "mean"),
        delta_ndcg10=("delta_ndcg10", "mean"),
        delta_rank=("delta_rank", "mean"),
    ).reset_index()
    return out[ABLATION_COLUMNS]


def run_ablation(
    model: SASRec, sae, data: RecData, edits: Sequence[Edit], scales: Sequence[float]
) -> pd.DataFrame:
    """Per (edit, scale) on every test user's last state (error term kept), see ablation.ablation_table."""
    cols = [
        "kind",
        "unit",
        "genre",
        "role",
        "scale",
        "n_users",
        "share_before",
        "share_after",
        "delta_share",
        "delta_ndcg10",
        "delta_rank",
    ]
    if not edits:
        return pd.DataFrame(columns=cols)
    states = model.last_states(data.split.test_histories)
    df = ablation_table(
        model, sae, states, data.split.test_histories, data.split.test_targets, data.meta, edits, scales
    )
    return df.reindex(columns=cols)


def ablation_figure(summary: pd.DataFrame, path: str | Path) -> None:
    """Dose-response: the concept genre's top-10 share change and ΔNDCG@10 against the unit's scale (1 = no
    edit), per role."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for role, g in summary.groupby("role", sort=False):
        g = pd.concat(
            [g, pd.DataFrame([{"scale": 1.0, "delta_share": 0.0, "delta_ndcg10": 0.0}])]
        ).sort_values("scale")
        axes[0].plot(g.scale, g.delta_share, marker="o", label=role)
        axes[1].plot(g.scale, g.delta_ndcg10, marker="o", label=role)
    axes[0].set_ylabel("Δ share of the concept genre in the top 10")
    axes[1].set_ylabel("Δ NDCG@10 (affected users)")
    for ax in axes:
        ax.set_xlabel("scale of the unit (0 = ablated, 1 = unchanged)")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if summary.empty:
        axes[0].text(
            0.5, 0.5, "no latent reached the confidence threshold", ha="center", transform=axes[0].transAxes
        )
    fig.suptitle("Latent ablation / amplification (error term kept)")
    _save(fig, path)
