"""% CE recovered of a spliced SAE on a tiny UniRep (identity SAE: 1; the ablations themselves: 0)."""

import pytest
import torch

from saeflow.models.unirep import MLSTMNet, UniRepModel
from saeflow.sae.base import ForwardOutput
from saeflow.studies.protein.fidelity import protein_fidelity

SEQS = ["MKVLAAGICW", "MAHHEKLL", "WYPQRSTNDLKAV"]


class Fixed:
    """Stands in for an SAE: reconstruct_raw returns fn(x)."""

    def __init__(self, fn):
        self.fn = fn

    def reconstruct_raw(self, x):
        return ForwardOutput(x.new_zeros(*x.shape[:-1], 1), self.fn(x))


def test_recovered_is_one_for_a_perfect_sae_and_zero_for_the_ablation():
    torch.manual_seed(0)
    model = UniRepModel(MLSTMNet(d=6, n_cells=2))
    mean = torch.full((6,), 0.1)
    perfect = protein_fidelity(model, SEQS, 0, Fixed(lambda x: x), mean, batch_size=2)
    assert perfect.ce_sae == pytest.approx(perfect.ce_clean, abs=1e-6)
    assert perfect.recovered_zero == pytest.approx(1.0) and perfect.recovered_mean == pytest.approx(1.0)
    assert perfect.n_scored == sum(len(s) - 1 for s in SEQS)
    zeroed = protein_fidelity(model, SEQS, 0, Fixed(torch.zeros_like), mean, batch_size=2)
    assert zeroed.ce_sae == pytest.approx(zeroed.ce_zero) and zeroed.recovered_zero == pytest.approx(
        0.0, abs=1e-9
    )
    assert zeroed.ce_zero != pytest.approx(zeroed.ce_clean)
