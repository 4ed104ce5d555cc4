"""RecSAE's concept dictionary: per latent, a concept from the sequences that activate it most, and the
confidence that the concept predicts activation on sequences not used to find it.

One row of `acts` [N, m] per sequence: a user history and the state at its last position, or every prefix of
the stored sequences (prefix_histories, aligned with the activation set's rows). A unit is active on a
sequence when its value is > 0; for raw neurons (the control) that is the positive part. Per unit:
1. Quantise its positive values into `n_levels` levels at its own quantiles (deciles by default): level 0 =
   inactive, 1..10 = decile of the positive values.
2. Candidates = sequences at level >= `min_level`; the top `n_explain + n_heldout` by value, interleaved by
   rank (ranks 0, 2, 4, ... explain; 1, 3, 5, ... are held out), so both halves span the same range.
3. `n_random` sequences drawn (seeded) among those where the unit is inactive.
4. An explainer sees the explaining sequences, names a concept, and predicts active/inactive for the held-out
   and random sequences (shown together). recall = held-out predicted active / n_heldout; precision = random
   predicted inactive / n_random; confidence = (held-out predicted active + random predicted inactive) /
   (n_heldout + n_random), RecSAE's formula (its "precision" is the inactive side's accuracy).
Units with too few candidates or inactive sequences get NaN scores and ``sampled = False``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from saeflow.errors import ConfigError, DataError


@dataclass(frozen=True)
class DictionaryConfig:
    """RecSAE's sampling of sequences per unit."""

    n_levels: int = 10
    """Quantisation levels of a unit's positive activations (10 = deciles)."""
    min_level: int = 5
    """Sequences at this level or above are candidates to explain / hold out."""
    n_explain: int = 5
    """Top candidates shown to the explainer."""
    n_heldout: int = 5
    """Top candidates held out (should be predicted active)."""
    n_random: int = 5
    """Random sequences where the unit is inactive (should be predicted inactive)."""
    seed: int = 0
    """Seeds the draw of inactive sequences."""
    chunk: int = 256
    """Units processed at once (memory ~ N × chunk)."""

    def __post_init__(self):
        if not 1 <= self.min_level <= self.n_levels or min(self.n_explain, self.n_heldout, self.n_random) < 1:
            raise ConfigError(
                f"dictionary: need 1 <= min_level <= n_levels and positive sample sizes; got {self}"
            )


def quantise_levels(acts: torch.Tensor, n_levels: int = 10) -> torch.Tensor:
    """[N, m] int64 levels: 0 where a unit is inactive (<= 0), else 1 + the number of the unit's
    positive-value quantiles (at 1/n, ..., (n-1)/n, linear interpolation) that the value exceeds."""
    acts = acts.float()
    q = torch.arange(1, n_levels, dtype=torch.float32) / n_levels
    levels = torch.zeros(acts.shape, dtype=torch.long)
    for s in range(0, acts.shape[1], 256):
        a = acts[:, s : s + 256]
        pos = a > 0
        bounds = torch.nanquantile(
            a.masked_fill(~pos, float("nan")), q, dim=0
        )  # [n-1, c]; NaN if never active
        above = (a.unsqueeze(0) > bounds.unsqueeze(1)).sum(0)
        levels[:, s : s + 256] = torch.where(pos, 1 + above, 0)
    return levels


class UnitSamples(NamedTuple):
    """Per unit, sequence indices (rows of acts); -1 where missing."""

    explain: torch.Tensor
    """[m, n_explain]."""
    heldout: torch.Tensor
    """[m, n_heldout]."""
    random: torch.Tensor
    """[m, n_random]."""
    sampled: torch.Tensor
    """[m] bool: enough candidates and inactive sequences."""
    n_candidates: torch.Tensor
    """[m] sequences at level >= min_level."""
    frequency: torch.Tensor
    """[m] share of sequences where the unit is active."""


def interleave(n_explain: int, n_heldout: int) -> tuple[list[int], list[int]]:
    """Ranks 0.. of the top candidates dealt alternately to explain / held out (the rest to the larger
    side)."""
    ex, ho = [], []
    for r in range(n_explain + n_heldout):
        (ex if (r % 2 == 0 and len(ex) < n_explain) or len(ho) == n_heldout else ho).append(r)
    return ex, ho


def sample_sequences(acts: torch.Tensor, cfg: DictionaryConfig = DictionaryConfig()) -> UnitSamples:
    """RecSAE's per-unit sample of explaining, held-out and random inactive sequences (vectorised over
    units)."""
    n, m = acts.shape
    top = cfg.n_explain + cfg.n_heldout
    if n < max(top, cfg.n_random):
        raise DataError(f"dictionary: {n} sequences; at least {max(top, cfg.n_random)} are needed")
    gen = torch.Generator().manual_seed(cfg.seed)
    parts = []
    for s in range(0, m, cfg.chunk):
        a = acts[:, s : s + cfg.chunk].float()
        cand = quantise_levels(a, cfg.n_levels) >= cfg.min_level
        vals, idx = a.masked_fill(~cand, -float("inf")).topk(top, dim=0)  # [top, c], by value
        keys = torch.rand(a.shape, generator=gen).masked_fill(a > 0, -float("inf"))
        parts.append((vals, idx, *keys.topk(cfg.n_random, dim=0), cand.sum(0), (a > 0).float().mean(0)))
    vals, idx, rkeys, ridx, n_cand, freq = (torch.cat(p, dim=-1) for p in zip(*parts))
    sampled = torch.isfinite(vals[-1]) & torch.isfinite(rkeys[-1])
    ex_rows, ho_rows = interleave(cfg.n_explain, cfg.n_heldout)
    idx = idx.masked_fill(~torch.isfinite(vals), -1)
    ridx = ridx.masked_fill(~torch.isfinite(rkeys), -1)
    return UnitSamples(
        idx[ex_rows].T.contiguous(), idx[ho_rows].T.contiguous(), ridx.T.contiguous(), sampled, n_cand, freq
    )


class ExplainerOutput(NamedTuple):
    terms: list[tuple[str, ...]]
    """Per unit, the concept's terms (most weighted first)."""
    predicted_active: torch.Tensor
    """[m, n_test] bool, one per test sequence."""


class Explainer(ABC):
    """Names a concept from explaining sequences and predicts activation on test sequences."""

    name: str

    @abstractmethod
    def explain_and_predict(self, explain: torch.Tensor, test: torch.Tensor) -> ExplainerOutput:
        """`explain` [m, e] and `test` [m, t] hold sequence indices (all >= 0) of each of m units; the test
        sequences mix held-out activating and random inactive ones, and the explainer is not told which."""


def sequence_terms(histories: Sequence[Sequence[int]], meta, recent: int = 20) -> list[list[str]]:
    """Metadata terms (genres, decade, title words; see ItemMeta.terms) of each history's last `recent`
    items."""
    return [[t for i in h[-recent:] for t in meta.terms(i)] for h in histories]


def prefix_histories(sequences: Sequence[Sequence[int]], max_len: int) -> list[list[int]]:
    """The history behind each stored row of write_sasrec_activations(sequences) (same order): for each
    sequence's last max_len items, every prefix. Pair with the store's rows to build the dictionary over all
    positions."""
    out = []
    for seq in sequences:
        kept = list(seq)[-max_len:]
        out += [kept[: p + 1] for p in range(len(kept))]
    return out


@dataclass(frozen=True)
class TfidfConfig:
    """The deterministic explainer."""

    n_terms: int = 5
    """Terms kept in a concept (the highest mean TF-IDF weights over the explaining sequences)."""
    threshold_quantile: float = 0.0
    """Threshold = this quantile of the explaining sequences' leave-one-out scores (0 = their minimum)."""


class TfidfExplainer(Explainer):
    """Concept = the `n_terms` highest-weighted terms of the explaining sequences' mean TF-IDF vector (IDF
    over all sequences, sublinear TF, L2-normalised rows). A sequence's score = cosine of its TF-IDF vector
    with the concept vector; predicted active when the score reaches the threshold (1e-6 tolerance), set on
    the explaining side as a quantile of each explaining sequence's score against the concept built from the
    other explaining ones."""

    name = "tfidf"

    def __init__(self, docs: Sequence[Sequence[str]], cfg: TfidfConfig = TfidfConfig()):
        vec = TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True, norm="l2")
        x = vec.fit_transform([list(d) for d in docs])
        self.vocab = np.asarray(vec.get_feature_names_out())
        self.x = x.tocsr().astype(np.float32)  # [N, V] sparse; rows gathered per chunk of units
        self.cfg = cfg

    def rows(self, index: torch.Tensor) -> torch.Tensor:
        """[*index.shape, V] dense TF-IDF rows."""
        dense = self.x[index.reshape(-1).numpy()].toarray()
        return torch.from_numpy(dense).reshape(*index.shape, -1)

    def _support(self, c: torch.Tensor) -> torch.Tensor:
        k = min(self.cfg.n_terms, c.shape[1])
        idx = c.topk(k, dim=1).indices
        return torch.zeros_like(c, dtype=torch.bool).scatter_(1, idx, True) & (c > 0)

    @staticmethod
    def _cos(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x [m, t, V], c [m, V] (or [m, t, V]) → [m, t] cosine (x rows are unit norm)."""
        c = c.unsqueeze(1) if c.ndim == 2 else c
        return (x * c).sum(-1) / c.norm(dim=-1).clamp_min(1e-12)

    def explain_and_predict(self, explain: torch.Tensor, test: torch.Tensor) -> ExplainerOutput:
        xe, xt = self.rows(explain), self.rows(test)  # [m, e, V], [m, t, V]
        e = xe.shape[1]
        c = xe.mean(1)
        support = self._support(c)
        ct = c * support
        loo = (c.unsqueeze(1) * e - xe) / max(e - 1, 1) * support.unsqueeze(1)  # [m, e, V]
        thr = torch.quantile(self._cos(xe, loo), self.cfg.threshold_quantile, dim=1)  # [m]
        pred = self._cos(xt, ct) >= thr.unsqueeze(1) - 1e-6  # at least the explaining side's threshold
        terms = []
        for row, sup in zip(ct, support):
            order = row.argsort(descending=True)[: int(sup.sum())]
            terms.append(tuple(self.vocab[order.numpy()].tolist()))
        return ExplainerOutput(terms, pred)


class ConfidenceScores(NamedTuple):
    confidence: torch.Tensor
    recall: torch.Tensor
    precision: torch.Tensor


def confidence_scores(heldout_active: torch.Tensor, random_active: torch.Tensor) -> ConfidenceScores:
    """RecSAE's scores from [m, h] / [m, r] predicted-active flags of held-out and random sequences."""
    h, r = heldout_active.shape[1], random_active.shape[1]
    hit = heldout_active.float().sum(1)
    rej = (~random_active.bool()).float().sum(1)
    return ConfidenceScores((hit + rej) / (h + r), hit / h, rej / r)


class DictionaryResult(NamedTuple):
    table: pd.DataFrame
    """One row per unit: unit, concept, confidence, recall, precision, frequency, n_candidates, sampled,
    genre."""
    samples: UnitSamples


def build_dictionary(
    acts: torch.Tensor, explainer: Explainer, cfg: DictionaryConfig = DictionaryConfig()
) -> DictionaryResult:
    """The concept dictionary of every unit (column) of `acts` [N, m]; rows align with the explainer's
    docs."""
    samples = sample_sequences(acts, cfg)
    m = acts.shape[1]
    conf = torch.full((m,), float("nan"))
    rec, prec = conf.clone(), conf.clone()
    terms: list[tuple[str, ...]] = [()] * m
    units = samples.sampled.nonzero().squeeze(1)
    for s in range(0, len(units), cfg.chunk):
        u = units[s : s + cfg.chunk]
        test = torch.cat([samples.heldout[u], samples.random[u]], 1)
        out = explainer.explain_and_predict(samples.explain[u], test)
        scores = confidence_scores(
            out.predicted_active[:, : cfg.n_heldout], out.predicted_active[:, cfg.n_heldout :]
        )
        conf[u], rec[u], prec[u] = scores
        for j, t in zip(u.tolist(), out.terms):
            terms[j] = t
    genre = [next((t.removeprefix("genre:") for t in ts if t.startswith("genre:")), "") for ts in terms]
    table = pd.DataFrame(
        {
            "unit": np.arange(m),
            "concept": [" ".join(t) for t in terms],
            "confidence": conf.numpy(),
            "recall": rec.numpy(),
            "precision": prec.numpy(),
            "frequency": samples.frequency.numpy(),
            "n_candidates": samples.n_candidates.numpy(),
            "sampled": samples.sampled.numpy(),
            "genre": genre,
        }
    )
    return DictionaryResult(table, samples)


def sae_codes(sae, states: torch.Tensor) -> torch.Tensor:
    """[N, m] latents of an SAE (trained or not) on raw states [N, d]."""
    return sae.reconstruct_raw(states).latents
