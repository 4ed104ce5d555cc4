"""Steering: the hook adds exactly α·‖h‖·d at the chosen positions and nothing elsewhere (tiny model)."""

import pytest
import torch
from tiny_models import save_tiny_model

from saeflow.interpret.steering import (
    Positions,
    SteerConfig,
    Steerer,
    dose_response,
    lm_splice,
    plot_dose_response,
    steer_concepts,
)
from saeflow.sae.base import make_sae

try:
    from saeflow.models.causal_lm import load_lm
except ImportError:  # pragma: no cover
    from saeflow.lm import load_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    lm = load_lm(save_tiny_model(tmp_path_factory.mktemp("m") / "tiny"))
    sae = make_sae({"architecture": "relu", "d_in": 16, "d_sae": 8}, seed=0)
    with torch.no_grad():
        sae.W_dec.mul_(3.0)  # non-unit rows: the steerer must normalise
    return lm, sae


def _capture(lm, ids, layer):
    got = {}
    hook = lm.layers[layer].register_forward_hook(
        lambda m, a, o: got.setdefault("h", (o[0] if isinstance(o, tuple) else o).clone())
    )
    try:
        lm.model(input_ids=ids)
    finally:
        hook.remove()
    return got["h"]


def _layer_output(lm, ids, layer, splice_fn=None):
    if splice_fn is None:
        return _capture(lm, ids, layer)
    with lm_splice(lm)(layer, splice_fn):  # registered first, so the capture sees the replaced output
        return _capture(lm, ids, layer)


def test_hook_adds_alpha_norm_direction_at_chosen_positions(tiny):
    lm, sae = tiny
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    clean = _layer_output(lm, ids, 1)
    st = Steerer(sae, latent=3, alpha=2.5, norm=4.0, positions=Positions(only=(1, 4)))
    steered = _layer_output(lm, ids, 1, st)
    d = sae.W_dec.detach()[3] / sae.W_dec.detach()[3].norm()
    diff = steered - clean
    torch.testing.assert_close(diff[0, [1, 4]], (2.5 * 4.0 * d).expand(2, -1), rtol=1e-5, atol=1e-5)
    assert diff[0, [0, 2, 3, 5]].abs().max() == 0
    # under a KV cache the position keeps counting: positions >= 6 steered on the next single-token forward
    st2 = Steerer(sae, 3, alpha=1.0, norm=1.0, positions=Positions(start=6))
    h = torch.zeros(1, 6, 16)
    assert st2(h).abs().max() == 0 and torch.allclose(st2(torch.zeros(1, 1, 16))[0, 0], d)


def test_clamp_sets_latent_and_keeps_error(tiny):
    _, sae = tiny
    h = torch.randn(1, 3, 16)
    st = Steerer(sae, 2, mode="clamp", value=1.7)
    new = st(h)
    # the exact edit: h' - h = (value - f(h)) · W_dec[2], so decode(f with f_2 = value) + SAE error = h'
    f = sae.encode(h.reshape(-1, 16))[:, 2]
    torch.testing.assert_close(
        new.reshape(-1, 16) - h.reshape(-1, 16), (1.7 - f)[:, None] * sae.W_dec[2], rtol=1e-5, atol=1e-5
    )


def test_steer_concepts_dose_response(tiny, tmp_path):
    lm, sae = tiny
    cfg = SteerConfig(alphas=(0.0, 4.0), max_new_tokens=3, n_random=1)
    rows = steer_concepts(lm, sae, 1, {"w3": 0}, {"w3": ["w3"]}, ["w1 w2"], torch.rand(8) + 0.1, 2.0, cfg)
    assert set(rows.control) == {"target", "random"} and len(rows) == 4
    a0 = rows[rows.alpha == 0]
    assert (a0.delta_logprob.abs() < 1e-5).all()  # α = 0 changes nothing
    table = dose_response(rows)
    assert len(table) == 4 and plot_dose_response(table, tmp_path / "dose.png").is_file()
