"""TERM (tilted empirical risk) against direct computations: value, limits and gradient."""

import itertools
import math

import pytest
import torch

from saeflow.sae.objectives import batch_objective, tilted_risk


def direct_tilted(losses: list[float], t: float) -> float:
    """(1/t) log((1/N) Σ exp(t ℓ_i)), computed naively in float64 (fine for small t·ℓ)."""
    return math.log(sum(math.exp(t * v) for v in losses) / len(losses)) / t


def test_matches_direct_log_mean_exp():
    losses = [1.0, 2.0, 4.0]
    for t in (0.1, 0.5, 1.0, 3.0):
        got = float(tilted_risk(torch.tensor(losses, dtype=torch.float64), t))
        assert got == pytest.approx(direct_tilted(losses, t), rel=1e-12)


def test_hand_worked_value():
    # ℓ = [0, ln 3], t = 1: (1/1) log((e^0 + e^{ln 3}) / 2) = log(4/2) = ln 2
    got = float(tilted_risk(torch.tensor([0.0, math.log(3.0)], dtype=torch.float64), 1.0))
    assert got == pytest.approx(math.log(2.0), rel=1e-12)


def test_zero_tilt_is_erm_value_and_gradient():
    x = torch.tensor([0.3, 1.7, 2.2, 5.0], dtype=torch.float64, requires_grad=True)
    erm = tilted_risk(x, 0.0)
    assert float(erm.detach()) == pytest.approx(float(x.detach().mean()))
    (g0,) = torch.autograd.grad(erm, x)
    assert torch.allclose(g0, torch.full_like(x, 0.25))
    # t → 0: value and gradient converge to ERM's
    small = tilted_risk(x, 1e-7)
    (gs,) = torch.autograd.grad(small, x)
    assert float(small.detach()) == pytest.approx(float(x.detach().mean()), abs=1e-6)
    assert torch.allclose(gs, g0, atol=1e-6)


def test_large_tilt_approaches_max_and_is_monotone():
    x = torch.tensor([1.0, 2.0, 3.0, 10.0], dtype=torch.float64)
    values = [float(tilted_risk(x, t)) for t in (0.0, 0.1, 1.0, 10.0, 1e3, 1e9)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))
    # R_t = max + (1/t) log(1/N) for a single maximum at large t; the paper's t = 1e9 stays finite
    assert values[-2] == pytest.approx(10.0 - math.log(4) / 1e3, rel=1e-9)
    assert values[-1] == pytest.approx(10.0, abs=1e-8)
    assert math.isfinite(values[-1])


def test_no_overflow_with_large_losses():
    # exp(t·ℓ) = exp(5000) overflows float64; logsumexp must not
    x = torch.tensor([1000.0, 999.0, 10.0], dtype=torch.float32)
    r = float(tilted_risk(x, 5.0))
    assert math.isfinite(r) and 999.0 < r <= 1000.0


@pytest.mark.parametrize("t", [0.05, 0.5, 2.0])
def test_gradient_is_softmax_of_tilted_losses(t):
    x = torch.tensor([0.5, 1.0, 1.5, 4.0, 0.1], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(tilted_risk(x, t), x)
    expected = torch.softmax(t * x.detach(), dim=0)
    assert torch.allclose(g, expected, atol=1e-12)
    assert float(g.sum()) == pytest.approx(1.0)


def test_gradient_through_per_token_losses_reweights_tokens():
    # ℓ_i = (w − y_i)²; dR/dw = Σ softmax(tℓ)_i · 2(w − y_i): the worst token dominates for large t
    w = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64)
    losses = (w - y) ** 2
    (g,) = torch.autograd.grad(tilted_risk(losses, 2.0), w)
    weights = torch.softmax(2.0 * losses.detach(), 0)
    assert float(g) == pytest.approx(float((weights * 2 * (0.0 - y)).sum()), rel=1e-12)
    assert weights[2] > 0.99


def test_batch_objective_adds_aux_and_keeps_dtype():
    x = torch.tensor([1.0, 2.0], dtype=torch.float32)
    out = batch_objective(x, torch.tensor(0.5), tilt=1.0)
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(direct_tilted([1.0, 2.0], 1.0) + 0.5, rel=1e-6)
