"""Next-item ranking metrics: HR@K and NDCG@K under full ranking and under the 100-sampled-negatives protocol,
and the popularity baseline.

Conventions (one target per user, leave-one-out):
- Scores are [U, n_items + 1]; column 0 is padding and never ranked.
- Full ranking excludes the user's history items (everything before the target) from the candidates; the
  target itself always stays. In MovieLens a user rates a movie once, so history items are never the answer;
  this is RecBole's full-sort convention.
- The rank is 0-based and pessimistic on ties: every other candidate scoring >= the target is counted ahead of
  it (so a constant scorer gets no credit from ties, and popularity ties do not inflate the baseline).
- HR@K = 1[rank < K]; NDCG@K = 1[rank < K] / log2(rank + 2) (one relevant item, so IDCG = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from saeflow.errors import DataError

# the ranking core lives beside the model (its validation uses it); re-exported here
from saeflow.models.sasrec import full_ranks, mask_histories, ndcg_per_user, target_ranks  # noqa: F401

DEFAULT_KS = (5, 10, 20)


def sample_negatives(
    sequences: Sequence[Sequence[int]], n_items: int, n: int = 100, seed: int = 0
) -> torch.Tensor:
    """[U, n] items drawn uniformly without replacement from the items the user never interacted with
    (`sequences` = each user's whole sequence, targets included: the SASRec paper's protocol)."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(sequences), n), dtype=np.int64)
    for u, seq in enumerate(sequences):
        seen = np.zeros(n_items + 1, dtype=bool)
        seen[0] = True
        seen[np.asarray(seq, dtype=np.int64)] = True
        pool = np.flatnonzero(~seen)
        if len(pool) < n:
            raise DataError(f"user {u} has only {len(pool)} unseen items; {n} negatives were asked for")
        out[u] = rng.choice(pool, size=n, replace=False)
    return torch.from_numpy(out)


def sampled_ranks(scores: torch.Tensor, targets: Sequence[int], negatives: torch.Tensor) -> torch.Tensor:
    """Rank of each target among itself and its sampled negatives (ties count against the target)."""
    t = torch.as_tensor(list(targets), dtype=torch.long)
    tgt = scores[torch.arange(len(t)), t].unsqueeze(1)
    return (scores.gather(1, negatives) >= tgt).sum(1)


@dataclass(frozen=True)
class RankingMetrics:
    """Mean HR@K and NDCG@K over users."""

    n_users: int
    hr: dict[int, float]
    ndcg: dict[int, float]

    def row(self, prefix: str = "") -> dict[str, float]:
        out: dict[str, float] = {}
        for k in sorted(self.hr):
            out[f"{prefix}HR@{k}"] = self.hr[k]
            out[f"{prefix}NDCG@{k}"] = self.ndcg[k]
        return out


def ranking_metrics(ranks: torch.Tensor, ks: Sequence[int] = DEFAULT_KS) -> RankingMetrics:
    """HR@K / NDCG@K from 0-based target ranks."""
    if ranks.numel() == 0:
        raise DataError("ranking_metrics: no users to evaluate")
    hr = {int(k): float((ranks < k).double().mean()) for k in ks}
    ndcg = {int(k): float(ndcg_per_user(ranks, k).mean()) for k in ks}
    return RankingMetrics(int(ranks.numel()), hr, ndcg)


def popularity_scores(histories: Sequence[Sequence[int]], n_items: int) -> torch.Tensor:
    """[n_items + 1] interaction counts of each item over `histories` (the popularity baseline's scores)."""
    flat = [i for h in histories for i in h]
    return torch.bincount(torch.as_tensor(flat, dtype=torch.long), minlength=n_items + 1).float()


def evaluate_scores(
    scores: torch.Tensor,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    ks: Sequence[int] = DEFAULT_KS,
) -> RankingMetrics:
    """Full-ranking HR/NDCG of [U, n_items + 1] scores."""
    return ranking_metrics(full_ranks(scores, histories, targets), ks)
