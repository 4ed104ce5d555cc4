"""saeflow.studies.recsys.metrics on hand-computed rankings."""

from __future__ import annotations

import math

import pytest
import torch

from saeflow.studies.recsys.metrics import (
    full_ranks,
    popularity_scores,
    ranking_metrics,
    sample_negatives,
    sampled_ranks,
)

NEG = -math.inf


def test_full_ranking_excludes_history_and_padding():
    # 5 items (columns 1..5); column 0 is padding and never ranked, however high its score.
    # user 0: target 3; item 1 is history → only item 2 ahead → rank 1
    # user 1: target 1; no history → 4 items ahead → rank 4
    # user 2: target 2, all tied; item 5 is history → the 3 other tied items count ahead → rank 3
    scores = torch.tensor(
        [
            [9.0, 5.0, 4.0, 3.0, 2.0, 1.0],
            [9.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            [0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        ]
    )
    ranks = full_ranks(scores, [[1], [], [5]], [3, 1, 2])
    # user 2: item 5 is history, so 3 tied others → rank 3
    assert ranks.tolist() == [1, 4, 3]
    m = ranking_metrics(ranks, (1, 2, 5))
    assert m.hr == {1: 0.0, 2: pytest.approx(1 / 3), 5: 1.0}
    # NDCG@5 = mean(1/log2(3), 1/log2(6), 1/log2(5))
    expected = (1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(5)) / 3
    assert m.ndcg[5] == pytest.approx(expected)
    assert m.ndcg[2] == pytest.approx((1 / math.log2(3)) / 3)
    assert m.row()["HR@5"] == 1.0


def test_target_in_history_is_still_ranked():
    scores = torch.tensor([[0.0, 3.0, 2.0, 1.0]])
    assert full_ranks(scores, [[2, 1]], [2]).tolist() == [0]  # item 1 masked, target 2 kept


def test_sampled_protocol():
    seqs = [[1, 2], [3]]
    neg = sample_negatives(seqs, n_items=6, n=3, seed=0)
    assert neg.shape == (2, 3)
    assert not set(neg[0].tolist()) & {0, 1, 2} and not set(neg[1].tolist()) & {0, 3}
    assert torch.equal(neg, sample_negatives(seqs, n_items=6, n=3, seed=0))
    scores = torch.arange(7.0).expand(2, 7)  # score = item index
    ranks = sampled_ranks(scores, [2, 3], neg)
    assert ranks.tolist() == [(neg[0] >= 2).sum().item(), (neg[1] >= 3).sum().item()]
    assert ranks[0] == 3  # negatives of user 0 are all in 3..6


def test_popularity_scores():
    assert popularity_scores([[1, 2], [2, 3], [2]], 4).tolist() == [0, 1, 3, 1, 0]
