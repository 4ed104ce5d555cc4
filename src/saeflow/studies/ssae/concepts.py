"""Tail-concept metrics of an SAE on a domain's held-out activations (docs/methods.md § Tail-concept recall).

* **Token frequency**: how often each token type occurs in the general corpus (tokens as extraction stores
them).
  Types are binned by that count with edges e_1 < e_2 < ... : bin 0 = [0, e_1), bin j = [e_j, e_{j+1}), last
  bin = [e_last, ∞); bins are listed rarest first.
* **Captured token type**: type t is captured if it is the *dominant token* of at least one latent: among the
  latent's `top_n` (20) highest activations on the domain set, t accounts for at least `dominance` (50%). Only
  firing (non-zero) activations count, so a latent that fires on fewer than `top_n` tokens is judged on those;
  the dominant token must also make up at least `min_count` of them (our choice, default 2: one token seen
  once would otherwise "dominate" a latent that fired once). A type is eligible in its bin if it occurs at
  least `min_count` times in the domain set; **tail recall** per bin = captured eligible types / eligible
  types.
* **Coverage**: share of the domain tokens on which any latent fires, per frequency bin of the token. For TopK
  SAEs every token has k active latents, so "fires" means an activation of at least `fire_threshold` times
  that latent's maximum over the domain set (our choice; 0 gives the literal "any non-zero latent").
* **Per-bin FVU**: Σ‖x − x̂‖² / Σ‖x − x̄‖² over the domain tokens of a frequency bin, x̄ the mean over all
  domain tokens: how well the SAE reconstructs tokens of rare vs common types (a continuous measure; the
  recall and coverage above are counts that saturate or tie at this scale). Rows with a norm above
  `outlier_ratio` × the median (attention sinks) are left out, as in the evaluation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from saeflow.errors import ConfigError, DataError
from saeflow.outliers import DEFAULT_OUTLIER_RATIO, outlier_threshold

DEFAULT_EDGES = (1, 10, 100, 1000, 10000)


# --------------------------------------------------------------------------- token frequencies


def count_token_types(
    token_lists: Iterable[Sequence[int]], vocab_size: int, *, skip_first: bool = True
) -> np.ndarray:
    """int64 [vocab_size] occurrence counts; position 0 of each list is skipped (extraction never stores
    it)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for toks in token_lists:
        arr = np.asarray(toks[1:] if skip_first else toks, dtype=np.int64)
        if len(arr):
            if arr.max() >= vocab_size or arr.min() < 0:
                raise DataError(f"token id {int(arr.max())} outside the vocabulary of size {vocab_size}")
            counts += np.bincount(arr, minlength=vocab_size)
    return counts


def check_edges(edges: Sequence[int]) -> tuple[int, ...]:
    edges = tuple(int(e) for e in edges)
    if not edges or any(b <= a for a, b in itertools.pairwise(edges)) or edges[0] < 1:
        raise ConfigError(f"frequency bin edges must be increasing positive integers; got {list(edges)}")
    return edges


def bin_labels(edges: Sequence[int]) -> list[str]:
    """Human-readable labels, rarest first: e.g. edges (1, 10) -> ["0", "1-9", ">=10"]."""
    edges = check_edges(edges)
    labels = ["0" if edges[0] == 1 else f"0-{edges[0] - 1}"]
    for a, b in itertools.pairwise(edges):
        labels.append(str(a) if b == a + 1 else f"{a}-{b - 1}")
    labels.append(f">={edges[-1]}")
    return labels


def frequency_bin(counts: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Bin index (0 = rarest) of each count."""
    return np.searchsorted(np.asarray(check_edges(edges)), np.asarray(counts), side="right")


# --------------------------------------------------------------------------- top activations


class TopActivations:
    """Streams (latents [N, m], token ids [N]); keeps each latent's `top_n` activations and their tokens."""

    def __init__(self, top_n: int = 20):
        if top_n < 1:
            raise ConfigError(f"top_n must be at least 1; got {top_n}")
        self.top_n = int(top_n)
        self.values: torch.Tensor | None = None  # [m, top_n], 0 where fewer activations
        self.tokens: torch.Tensor | None = None  # [m, top_n], -1 where none

    def update(self, latents: torch.Tensor, token_ids: torch.Tensor) -> None:
        f = latents.detach().float()
        if f.ndim != 2 or token_ids.shape[0] != f.shape[0]:
            raise ValueError(
                f"latents must be [N, m] with N token ids; got {tuple(f.shape)}, {tuple(token_ids.shape)}"
            )
        m = f.shape[1]
        if self.values is None:
            self.values = torch.zeros(m, self.top_n)
            self.tokens = torch.full((m, self.top_n), -1, dtype=torch.long)
        k = min(self.top_n, f.shape[0])
        v, idx = f.T.topk(k, dim=1)  # [m, k]
        t = token_ids.long()[idx]
        t = torch.where(v > 0, t, torch.full_like(t, -1))
        v = v.clamp_min(0)
        all_v = torch.cat([self.values, v], dim=1)
        all_t = torch.cat([self.tokens, t], dim=1)
        best_v, best_i = all_v.topk(self.top_n, dim=1)
        self.values, self.tokens = best_v, all_t.gather(1, best_i)

    @property
    def max_activation(self) -> torch.Tensor:
        if self.values is None:
            raise DataError("TopActivations: no rows seen")
        return self.values[:, 0]


def dominant_tokens(
    values: torch.Tensor, tokens: torch.Tensor, *, dominance: float = 0.5, min_count: int = 2
) -> torch.Tensor:
    """Per latent, its dominant token id among its firing top activations, or -1 (see module docstring)."""
    if not 0 < dominance <= 1:
        raise ConfigError(f"dominance must be in (0, 1]; got {dominance}")
    out = torch.full((values.shape[0],), -1, dtype=torch.long)
    fired = (values > 0) & (tokens >= 0)
    for i in torch.nonzero(fired.any(1)).flatten().tolist():
        toks = tokens[i][fired[i]]
        uniq, counts = toks.unique(return_counts=True)
        j = int(counts.argmax())
        c = int(counts[j])
        if c >= min_count and c >= dominance * len(toks):
            out[i] = uniq[j]
    return out


# --------------------------------------------------------------------------- reports


class BinStats(NamedTuple):
    label: str
    n_types: int
    """Eligible token types of the bin (occurring at least min_count times in the domain set)."""
    n_captured: int
    recall: float
    """n_captured / n_types (NaN for an empty bin)."""
    n_tokens: int
    """Domain token occurrences whose type falls in the bin."""
    coverage: float
    """Share of those occurrences on which some latent fires above the threshold."""
    fvu: float
    """Σ‖x − x̂‖² / Σ‖x − x̄‖² over those occurrences (inliers; x̄ the mean of all domain inliers)."""


class ConceptReport(NamedTuple):
    bins: list[BinStats]
    tail_recall_rare: float
    """Captured share over eligible types with general-corpus count below `rare_max_count`."""
    coverage_rare: float
    """Coverage over the domain tokens whose type has a general-corpus count below `rare_max_count`."""
    fvu_rare: float
    """Per-bin FVU over the domain tokens whose type has a general-corpus count below `rare_max_count`."""
    n_captured_total: int
    n_types_total: int
    n_tokens: int
    n_latents_with_dominant: int

    def to_dict(self) -> dict:
        d = self._asdict()
        d["bins"] = [b._asdict() for b in self.bins]
        return d


def tail_concept_recall(
    dominant: torch.Tensor,
    domain_counts: np.ndarray,
    general_counts: np.ndarray,
    edges: Sequence[int],
    *,
    min_count: int = 2,
    rare_max_count: int = 10,
) -> tuple[list[tuple[str, int, int]], float, int, int]:
    """Per bin (rarest first): (label, eligible types, captured types); plus the rare-type recall and
    totals."""
    edges = check_edges(edges)
    vocab = len(general_counts)
    if len(domain_counts) != vocab:
        raise DataError(f"domain counts cover {len(domain_counts)} types, general counts {vocab}")
    captured = np.zeros(vocab, dtype=bool)
    d = dominant[dominant >= 0].numpy()
    if len(d):
        captured[d[d < vocab]] = True
    eligible = domain_counts >= max(1, min_count)
    bins = frequency_bin(general_counts, edges)
    rows = []
    for j, label in enumerate(bin_labels(edges)):
        mask = eligible & (bins == j)
        rows.append((label, int(mask.sum()), int((mask & captured).sum())))
    rare = eligible & (general_counts < rare_max_count)
    rare_recall = float((rare & captured).sum() / rare.sum()) if rare.sum() else float("nan")
    return rows, rare_recall, int((eligible & captured).sum()), int(eligible.sum())


def concept_report(
    sae,
    rows: Iterable,
    general_counts: np.ndarray,
    *,
    edges: Sequence[int] = DEFAULT_EDGES,
    top_n: int = 20,
    dominance: float = 0.5,
    min_count: int = 2,
    rare_max_count: int = 10,
    fire_threshold: float = 0.5,
    outlier_ratio: float = DEFAULT_OUTLIER_RATIO,
    device: str = "cpu",
) -> ConceptReport:
    """Tail recall, coverage and per-bin FVU of `sae` on activation rows (ActivationStore.iter_rows: acts +
    token ids).

    The SAE runs once over `rows`; they are read twice more without it (the inlier mean needs the norm limit
    of every row, the per-bin variance that mean). Pass a callable returning a fresh iterator, or a list.
    """
    make_rows = rows if callable(rows) else (lambda: rows)
    vocab = len(general_counts)
    top = TopActivations(top_n)
    domain_counts = np.zeros(vocab, dtype=np.int64)
    norms: list[torch.Tensor] = []
    errors: list[torch.Tensor] = []  # per row ‖x − x̂‖² (float64)
    codes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (row, latent, value) of active codes
    n_tokens = 0
    for block in make_rows():
        x = block.acts.to(device)
        f, x_hat = sae.reconstruct_raw(x)
        f = f.cpu()
        ids = block.token_ids.long()
        top.update(f, ids)
        domain_counts += np.bincount(ids.numpy(), minlength=vocab)[:vocab]
        x64 = x.double().cpu()
        norms.append(x64.norm(dim=1))
        errors.append((x64 - x_hat.double().cpu()).pow(2).sum(1))
        row, latent = (f > 0).nonzero(as_tuple=True)
        codes.append((row + n_tokens, latent, f[row, latent]))
        n_tokens += len(ids)
    if n_tokens == 0:
        raise DataError("concept_report: no activation rows")
    row_norms, row_errors = torch.cat(norms), torch.cat(errors)
    norm_limit = outlier_threshold(row_norms, outlier_ratio)
    mean = _inlier_mean(make_rows(), norm_limit)
    dominant = dominant_tokens(top.values, top.tokens, dominance=dominance, min_count=min_count)
    recall_rows, rare_recall, n_cap, n_types = tail_concept_recall(
        dominant, domain_counts, general_counts, edges, min_count=min_count, rare_max_count=rare_max_count
    )

    # coverage: a row is covered when some live latent reaches `fire_threshold` × its max over the domain set
    thresh = top.max_activation * fire_threshold
    alive = top.max_activation > 0
    fires_all = torch.zeros(n_tokens, dtype=torch.bool)
    for row, latent, value in codes:
        fires_all[row[(value >= thresh[latent]) & alive[latent]]] = True
    labels = bin_labels(edges)
    covered = np.zeros(len(labels), dtype=np.int64)
    totals = np.zeros(len(labels), dtype=np.int64)
    rare_total = rare_covered = 0
    err, var = np.zeros(len(labels)), np.zeros(len(labels))  # Σ‖x − x̂‖², Σ‖x − x̄‖² per bin (inliers)
    rare_err = rare_var = 0.0
    start = 0
    for block in make_rows():
        stop = start + len(block.token_ids)
        fires = fires_all[start:stop].numpy()
        counts = general_counts[block.token_ids.long().numpy()]
        b = frequency_bin(counts, edges)
        totals += np.bincount(b, minlength=len(labels))
        covered += np.bincount(b[fires], minlength=len(labels))
        rare = counts < rare_max_count
        rare_total += int(rare.sum())
        rare_covered += int((rare & fires).sum())
        inlier = (row_norms[start:stop] <= norm_limit).numpy()
        e = row_errors[start:stop].numpy() * inlier
        v = (block.acts.double() - mean).pow(2).sum(1).numpy() * inlier
        err += np.bincount(b, weights=e, minlength=len(labels))
        var += np.bincount(b, weights=v, minlength=len(labels))
        rare_err, rare_var = rare_err + float(e[rare].sum()), rare_var + float(v[rare].sum())
        start = stop
    bins = [
        BinStats(
            label,
            nt,
            nc,
            nc / nt if nt else float("nan"),
            int(tot),
            cov / tot if tot else float("nan"),
            float(e / v) if v > 0 else float("nan"),
        )
        for (label, nt, nc), tot, cov, e, v in zip(recall_rows, totals, covered, err, var, strict=True)
    ]
    coverage_rare = rare_covered / rare_total if rare_total else float("nan")
    fvu_rare = rare_err / rare_var if rare_var > 0 else float("nan")
    return ConceptReport(
        bins, rare_recall, coverage_rare, fvu_rare, n_cap, n_types, n_tokens, int((dominant >= 0).sum())
    )


def _inlier_mean(rows: Iterable, norm_limit: float) -> torch.Tensor:
    """float64 [d] mean of the rows' activations with a norm at most `norm_limit`."""
    total, n = None, 0
    for block in rows:
        x = block.acts.double()
        x = x[x.norm(dim=1) <= norm_limit]
        total = x.sum(0) if total is None else total + x.sum(0)
        n += len(x)
    if not n:
        raise DataError("concept_report: every activation row is an outlier")
    return total / n
