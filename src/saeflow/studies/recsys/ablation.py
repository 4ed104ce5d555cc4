"""Latent ablation / amplification on SASRec's scoring state, with the SAE error term kept, and its controls.

An SAE edit sets f' = f with the chosen latents scaled (×0 ablates) and uses h' = h − ŝ(h) + decode(f') where
ŝ(h) = decode(f) is the reconstruction: the error h − ŝ(h) is kept. Algebraically (b_dec cancels)
h' = h + (f' − f) W_dec / input_scale, which is how it is computed, so scale 1 leaves h exactly unchanged. A
neuron edit scales coordinates of h itself. Only users on whose state the unit is active (> 0) are affected
and measured; items are re-ranked from h' against all items (history excluded, see metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from saeflow.errors import ConfigError
from saeflow.studies.recsys.metrics import mask_histories, ndcg_per_user, target_ranks


def edit_latents(sae, states: torch.Tensor, units: Sequence[int], scale: float) -> torch.Tensor:
    """h' = h − sae(h) + decode(f') with f'_u = scale · f_u for u in `units` (error term kept)."""
    u = torch.as_tensor(list(units), dtype=torch.long)
    f = sae.reconstruct_raw(states).latents[:, u]
    with torch.no_grad():
        delta = (f * (scale - 1.0)) @ sae.W_dec[u].to(f.dtype) / sae.input_scale
    return states + delta.to(states.dtype)


def edit_neurons(states: torch.Tensor, units: Sequence[int], scale: float) -> torch.Tensor:
    """h' = h with coordinates `units` multiplied by `scale` (the raw-neuron control)."""
    out = states.clone()
    out[:, list(units)] *= scale
    return out


def unit_values(sae, states: torch.Tensor, kind: str, unit: int) -> torch.Tensor:
    """[U] value of the unit on each state (latent or neuron)."""
    if kind == "latent":
        return sae.reconstruct_raw(states).latents[:, unit]
    if kind == "neuron":
        return states[:, unit]
    raise ConfigError(f"ablation unit kind must be 'latent' or 'neuron'; got '{kind}'")


def genre_items(meta, genre: str) -> torch.Tensor:
    """[n_items + 1] bool: items carrying `genre`."""
    return torch.tensor([genre in g for g in meta.genres], dtype=torch.bool)


def top_k_share(masked_scores: torch.Tensor, item_flags: torch.Tensor, k: int = 10) -> torch.Tensor:
    """[U] share of each user's top-k items (history already masked out) that carry the flag."""
    top = masked_scores.topk(k, dim=1).indices
    return item_flags[top].float().mean(1)


def matched_frequency_controls(
    frequency: torch.Tensor, chosen: Sequence[int], seed: int = 0, pool: int = 5
) -> list[int]:
    """For each chosen latent, a different latent (not chosen, active at least once) drawn among the `pool`
    with the closest activation frequency; seeded, without repeats."""
    rng = np.random.default_rng(seed)
    taken = {int(c) for c in chosen}
    out = []
    freq = frequency.double()
    for c in chosen:
        gap = (freq - freq[c]).abs()
        gap[freq <= 0] = float("inf")
        gap[list(taken)] = float("inf")
        near = [int(i) for i in gap.argsort()[:pool] if torch.isfinite(gap[i])]
        if not near:
            raise ConfigError("matched_frequency_controls: no latent left to draw")
        pick = int(rng.choice(near))
        taken.add(pick)
        out.append(pick)
    return out


class Edit(NamedTuple):
    kind: str
    """'latent' or 'neuron'."""
    unit: int
    genre: str
    """Concept genre whose top-10 share is measured."""
    role: str
    """'concept', 'random_matched', 'neuron' ... (free text for the tables)."""


def ablation_table(
    model,
    sae,
    states: torch.Tensor,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    meta,
    edits: Sequence[Edit],
    scales: Sequence[float] = (0.0, 2.0, 5.0),
    k: int = 10,
) -> pd.DataFrame:
    """One row per (edit, scale): users affected, the concept genre's top-k share before/after, ΔNDCG@k and
    the mean change of the held-out item's rank (positive = pushed down). `model.scores(states)` scores
    items."""
    targets = list(targets)
    rows = []
    for e in edits:
        active = (unit_values(sae, states, e.kind, e.unit) > 0).nonzero().squeeze(1).tolist()
        if not active:
            rows.append({**e._asdict(), "scale": None, "n_users": 0})
            continue
        h = states[active]
        hist = [histories[i] for i in active]
        tgt = [targets[i] for i in active]
        flags = genre_items(meta, e.genre)
        before = mask_histories(model.scores(h), hist, tgt)
        share0, rank0 = top_k_share(before, flags, k), target_ranks(before, tgt)
        for s in scales:
            h2 = edit_latents(sae, h, [e.unit], s) if e.kind == "latent" else edit_neurons(h, [e.unit], s)
            after = mask_histories(model.scores(h2), hist, tgt)
            share1, rank1 = top_k_share(after, flags, k), target_ranks(after, tgt)
            rows.append(
                {
                    **e._asdict(),
                    "scale": float(s),
                    "n_users": len(active),
                    "share_before": float(share0.mean()),
                    "share_after": float(share1.mean()),
                    "delta_share": float((share1 - share0).mean()),
                    f"delta_ndcg{k}": float((ndcg_per_user(rank1, k) - ndcg_per_user(rank0, k)).mean()),
                    "delta_rank": float((rank1 - rank0).double().mean()),
                }
            )
    return pd.DataFrame(rows)
