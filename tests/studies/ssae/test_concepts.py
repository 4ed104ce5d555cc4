"""Tail-concept metrics on hand-made latents and token ids."""

import json
import math

import numpy as np
import pytest
import torch

from saeflow.activations import Rows
from saeflow.errors import ConfigError
from saeflow.studies.ssae.concepts import (
    TopActivations,
    bin_labels,
    check_edges,
    concept_report,
    count_token_types,
    dominant_tokens,
    frequency_bin,
    tail_concept_recall,
)


def test_count_token_types_skips_position_zero():
    # position 0 is never stored by extraction: [5, 1, 1] counts token 1 twice, [2, 3] counts 3 once
    counts = count_token_types([[5, 1, 1], [2, 3], [4]], vocab_size=6)
    assert counts.tolist() == [0, 2, 0, 1, 0, 0]
    assert count_token_types([[5, 1]], 6, skip_first=False).tolist() == [0, 1, 0, 0, 0, 1]


def test_bins_rarest_first():
    edges = [1, 10, 100]
    assert bin_labels(edges) == ["0", "1-9", "10-99", ">=100"]
    assert frequency_bin(np.array([0, 1, 9, 10, 99, 100, 5000]), edges).tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert bin_labels([2, 3]) == ["0-1", "2", ">=3"]
    with pytest.raises(ConfigError):
        check_edges([10, 5])


def test_top_activations_streams_and_keeps_tokens():
    top = TopActivations(top_n=2)
    # latent 0 fires 1, 5, 3 on tokens 7, 8, 9 (split over two blocks); latent 1 fires once on token 8
    top.update(torch.tensor([[1.0, 0.0], [5.0, 2.0]]), torch.tensor([7, 8]))
    top.update(torch.tensor([[3.0, 0.0]]), torch.tensor([9]))
    assert top.values.tolist() == [[5.0, 3.0], [2.0, 0.0]]
    assert top.tokens.tolist() == [[8, 9], [8, -1]]
    assert top.max_activation.tolist() == [5.0, 2.0]


def test_dominant_tokens_rule():
    values = torch.tensor(
        [
            [9.0, 8.0, 7.0, 6.0],  # tokens 4, 4, 5, 6 -> 4 has 2/4 = 50% -> dominant
            [9.0, 8.0, 7.0, 6.0],  # tokens 1, 2, 3, 4 -> no token reaches 50%
            [3.0, 2.0, 0.0, 0.0],  # fires twice, both token 6 -> 2/2, count 2 -> dominant
            [3.0, 0.0, 0.0, 0.0],  # fires once on token 8 -> below min_count 2
        ]
    )
    tokens = torch.tensor([[4, 4, 5, 6], [1, 2, 3, 4], [6, 6, -1, -1], [8, -1, -1, -1]])
    assert dominant_tokens(values, tokens, dominance=0.5, min_count=2).tolist() == [4, -1, 6, -1]
    # stricter dominance: 2/4 is not enough for latent 0 any more
    assert dominant_tokens(values, tokens, dominance=0.6, min_count=2).tolist() == [-1, -1, 6, -1]
    assert dominant_tokens(values, tokens, dominance=0.5, min_count=1).tolist() == [4, -1, 6, 8]


def test_tail_concept_recall_per_bin():
    # vocab of 6 types. general counts: types 0,1 unseen (bin "0"), 2,3 rare (bin "1-9"), 4,5 common (">=10")
    general = np.array([0, 0, 3, 5, 50, 500])
    # domain counts: type 1 occurs once (not eligible with min_count 2)
    domain = np.array([4, 1, 2, 3, 10, 0])
    dominant = torch.tensor([0, 3, 3, -1, 4])  # captured types: 0, 3, 4
    rows, rare, n_cap, n_types = tail_concept_recall(
        dominant, domain, general, [1, 10], min_count=2, rare_max_count=10
    )
    # bin "0": eligible {0}, captured {0} -> 1/1; bin "1-9": eligible {2, 3}, captured {3} -> 1/2;
    # bin ">=10": eligible {4} (type 5 absent from the domain), captured {4} -> 1/1
    assert rows == [("0", 1, 1), ("1-9", 2, 1), (">=10", 1, 1)]
    # rare = general count < 10: eligible {0, 2, 3}, captured {0, 3} -> 2/3
    assert rare == pytest.approx(2 / 3)
    assert (n_cap, n_types) == (3, 4)


class _IdentitySAE:
    """latents = relu(x) itself, reconstruction = x (enough for the concept metrics)."""

    def reconstruct_raw(self, x):
        return torch.relu(x), x


def test_concept_report_end_to_end_by_hand():
    # 3 latents over 6 tokens. latent 0 fires on token type 2 (rare) three times -> dominant 2;
    # latent 1 fires on types 3, 4, 5 (one each) -> no dominant; latent 2 fires strongly once, weakly
    # elsewhere.
    acts = torch.tensor(
        [
            [1.0, 0.0, 0.1],  # type 2
            [1.0, 0.0, 0.1],  # type 2
            [1.0, 0.0, 0.1],  # type 2
            [0.0, 1.0, 0.1],  # type 3
            [0.0, 1.0, 0.1],  # type 4
            [0.0, 1.0, 2.0],  # type 5
        ]
    )
    ids = torch.tensor([2, 2, 2, 3, 4, 5], dtype=torch.int32)
    rows = [Rows(acts, ids, torch.zeros(6, dtype=torch.int32), torch.arange(6, dtype=torch.int32))]
    general = np.array([0, 0, 5, 5, 500, 500])  # types 2, 3 rare ("1-9"); 4, 5 common (">=10")
    rep = concept_report(
        _IdentitySAE(),
        rows,
        general,
        edges=[1, 10],
        top_n=20,
        dominance=0.5,
        min_count=2,
        rare_max_count=10,
        fire_threshold=0.6,
    )
    # eligible types (domain count >= 2): only type 2 -> captured by latent 0
    assert rep.n_types_total == 1 and rep.n_captured_total == 1
    assert rep.tail_recall_rare == 1.0
    assert [b.label for b in rep.bins] == ["0", "1-9", ">=10"]
    assert math.isnan(rep.bins[0].recall) and rep.bins[0].n_tokens == 0
    # coverage with threshold 0.6 x max: every token has latent 0 or 1 at its max (1.0) -> all covered
    assert rep.bins[1].n_tokens == 4 and rep.bins[1].coverage == 1.0
    assert rep.bins[2].coverage == 1.0
    # threshold 1.0 on latent 2 only: drop latents 0 and 1 by making them fire below their max
    acts2 = acts.clone()
    acts2[:, :2] *= torch.tensor([[1.0, 1.0]]) * torch.linspace(0.1, 0.2, 6)[:, None]
    acts2[0, 0] = 1.0  # latent 0's max is on token row 0 only
    rows2 = [Rows(acts2, ids, rows[0].doc_index, rows[0].position)]
    rep2 = concept_report(_IdentitySAE(), rows2, general, edges=[1, 10], fire_threshold=1.0)
    # covered: row 0 (latent 0 at its max), row 5 (latent 2 at its max and latent 1 at its max)
    # -> bins 1-9: 1/4
    assert rep2.bins[1].coverage == pytest.approx(1 / 4)
    assert rep2.bins[2].coverage == pytest.approx(1 / 2)
    # rare = general count < 10: the 4 tokens of types 2 and 3, one covered
    assert rep2.coverage_rare == pytest.approx(1 / 4) and rep.coverage_rare == 1.0


class _FirstCoordinateLostSAE:
    """reconstruction = x with its first coordinate zeroed: the error of a row is x₀²."""

    def reconstruct_raw(self, x):
        x_hat = x.clone()
        x_hat[:, 0] = 0
        return torch.relu(x), x_hat


def test_per_bin_fvu_by_hand():
    acts = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 2.0], [100.0, 0.0]])
    ids = torch.tensor([2, 3, 4, 5, 2], dtype=torch.int32)
    rows = [Rows(acts, ids, torch.zeros(5, dtype=torch.int32), torch.arange(5, dtype=torch.int32))]
    general = np.array([0, 0, 5, 5, 500, 500])  # types 2, 3 in "1-9"; 4, 5 in ">=10"
    rep = concept_report(_FirstCoordinateLostSAE(), rows, general, edges=[1, 10], outlier_ratio=10.0)
    # row 4 (norm 100 > 10 × median norm 2) is an outlier; inlier mean x̄ = (1, 1.5)
    # errors x₀²: 4, 0, 0, 4; ‖x − x̄‖²: 3.25, 1.25, 1.25, 1.25
    assert rep.bins[1].fvu == pytest.approx(4 / 4.5)
    assert rep.bins[2].fvu == pytest.approx(4 / 2.5)
    assert math.isnan(rep.bins[0].fvu)
    assert rep.fvu_rare == pytest.approx(4 / 4.5)
    exact = concept_report(_IdentitySAE(), rows, general, edges=[1, 10])
    assert exact.bins[1].fvu == 0.0 and exact.fvu_rare == 0.0


class _CountingSAE(_FirstCoordinateLostSAE):
    """Counts the rows it reconstructs."""

    def __init__(self):
        self.rows_seen = 0

    def reconstruct_raw(self, x):
        self.rows_seen += len(x)
        return super().reconstruct_raw(x)


def test_concept_report_blocks_and_one_sae_pass():
    acts = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 2.0], [100.0, 0.0], [0.0, 0.5]])
    ids = torch.tensor([2, 3, 4, 5, 2, 3], dtype=torch.int32)
    general = np.array([0, 0, 5, 5, 500, 500])
    one = [Rows(acts, ids, torch.zeros(6, dtype=torch.int32), torch.arange(6, dtype=torch.int32))]
    # coverage of row 5 (latent 1 at 0.5 of its max 2.0) and the FVU rows live in the second block
    doc, pos = one[0].doc_index, one[0].position
    split = [Rows(acts[a:b], ids[a:b], doc[a:b], pos[a:b]) for a, b in ((0, 4), (4, 6))]
    counting = _CountingSAE()
    whole = concept_report(_FirstCoordinateLostSAE(), one, general, edges=[1, 10], outlier_ratio=10.0)
    blocks = concept_report(counting, lambda: iter(split), general, edges=[1, 10], outlier_ratio=10.0)
    assert json.dumps(blocks.to_dict()) == json.dumps(whole.to_dict())  # NaN bins included
    assert counting.rows_seen == 6  # the SAE runs once over the rows
    # thresholds 0.5 × max: latent 0 50 (row 4 at 100), latent 1 1.0. Bin "1-9" holds rows 0, 1, 4, 5: rows 1
    # and 4 reach a threshold, row 0 (2 < 50) and row 5 (0.5 < 1) do not; bin ">=10" rows 2, 3 both do
    assert whole.bins[1].coverage == pytest.approx(2 / 4)
    assert whole.bins[2].coverage == 1.0
