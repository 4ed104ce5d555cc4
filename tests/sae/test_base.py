"""SAE base class, ReLU+L1 and TopK on hand-made inputs; save/load in the SAELens layout."""

import json

import pytest
import torch
from safetensors.torch import load_file

from saeflow.errors import ConfigError, DataError
from saeflow.sae import SAEConfig, load_sae, make_sae
from saeflow.sae.topk import topk_mask_values


def _set(sae, W_enc, b_enc, W_dec, b_dec):
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor(W_enc))
        sae.b_enc.copy_(torch.tensor(b_enc))
        sae.W_dec.copy_(torch.tensor(W_dec))
        sae.b_dec.copy_(torch.tensor(b_dec))


def test_relu_forward_and_l1_loss_by_hand():
    sae = make_sae({"architecture": "relu", "d_in": 2, "d_sae": 2, "l1_coefficient": 0.5})
    # W_enc = I, b_enc = [0, -1], W_dec rows [2,0] and [0,1], b_dec = 0
    _set(sae, [[1.0, 0.0], [0.0, 1.0]], [0.0, -1.0], [[2.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    x = torch.tensor([[1.0, 3.0]])
    # pre = [1, 2] -> f = [1, 2]; x_hat = 1*[2,0] + 2*[0,1] = [2, 2]; err² = 1 + 1 = 2
    # L1 = 0.5 * (|1|*‖[2,0]‖ + |2|*‖[0,1]‖) = 0.5 * (2 + 2) = 2  -> per-token loss 4
    f, x_hat = sae(x)
    assert torch.allclose(f, torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(x_hat, torch.tensor([[2.0, 2.0]]))
    terms = sae.training_loss(x)
    assert torch.allclose(terms.per_token, torch.tensor([4.0]))


def test_relu_negative_preacts_are_zero():
    sae = make_sae({"architecture": "relu", "d_in": 2, "d_sae": 2})
    _set(sae, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    f, _ = sae(torch.tensor([[-1.0, 2.0]]))
    assert f.tolist() == [[0.0, 2.0]]


def test_topk_keeps_k_largest_then_relu():
    pre = torch.tensor([[3.0, -1.0, 2.0, 0.5], [-3.0, -2.0, -1.0, 1.0]])
    f = topk_mask_values(pre, 2)
    # row 0 keeps 3 and 2; row 1 keeps 1 and relu(-1) = 0
    assert f.tolist() == [[3.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def test_topk_l0_at_most_k():
    sae = make_sae({"architecture": "topk", "d_in": 8, "d_sae": 32, "k": 4}, seed=0)
    f, _ = sae(torch.randn(64, 8))
    assert ((f > 0).sum(-1) <= 4).all()


def test_auxk_only_when_latents_are_dead():
    sae = make_sae({"architecture": "topk", "d_in": 8, "d_sae": 32, "k": 4, "dead_tokens": 10}, seed=0)
    x = torch.randn(16, 8)
    assert float(sae.training_loss(x).aux) == 0.0
    sae.tokens_since_fired.fill_(100)  # all dead
    aux = sae.training_loss(x).aux
    assert float(aux) > 0
    aux.backward()
    assert sae.W_dec.grad is not None and sae.W_dec.grad.abs().sum() > 0


def test_dead_tracking_resets_on_fire():
    sae = make_sae({"architecture": "topk", "d_in": 2, "d_sae": 3, "k": 1, "dead_tokens": 5})
    sae.update_dead_tracking_(torch.tensor([[0.0, 1.0, 0.0]] * 6))
    assert sae.tokens_since_fired.tolist() == [6, 0, 6]
    assert sae.dead_mask().tolist() == [True, False, True]


def test_unit_norm_decoder_and_parallel_grad_removal():
    sae = make_sae({"architecture": "topk", "d_in": 4, "d_sae": 6, "k": 2}, seed=1)
    sae.training_loss(torch.randn(8, 4)).per_token.mean().backward()
    sae.remove_parallel_decoder_grad_()
    assert torch.allclose((sae.W_dec.grad * sae.W_dec).sum(-1), torch.zeros(6), atol=1e-6)
    with torch.no_grad():
        sae.W_dec.mul_(3)
    sae.normalize_decoder_()
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(6))


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_save_load_round_trip_with_input_scale(tmp_path, arch):
    sae = make_sae({"architecture": arch, "d_in": 8, "d_sae": 16, "k": 4}, seed=0)
    with torch.no_grad():
        sae.b_dec.normal_()
        sae.b_enc.normal_()
    sae.input_scale = 2.5  # trained on 2.5·x
    x = torch.randn(10, 8)
    f_ref, r_ref = sae.reconstruct_raw(x)
    sae.save(tmp_path / "sae", metadata={"hook_layer": 3})
    loaded = load_sae(tmp_path / "sae")
    assert loaded.input_scale == 1.0  # saved weights act on raw activations
    f, r = loaded.reconstruct_raw(x)
    assert torch.allclose(f, f_ref, atol=1e-5) and torch.allclose(r, r_ref, atol=1e-5)
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["d_in"] == 8 and cfg["d_sae"] == 16 and cfg["hook_layer"] == 3
    assert cfg["architecture"] == {"relu": "standard", "topk": "topk"}[arch]
    weights = load_file(str(tmp_path / "sae" / "sae_weights.safetensors"))
    assert weights["W_enc"].shape == (8, 16) and weights["W_dec"].shape == (16, 8)


def test_set_input_scale_keeps_the_function():
    sae = make_sae({"architecture": "topk", "d_in": 8, "d_sae": 16, "k": 4}, seed=0)
    x = torch.randn(5, 8)
    _, before = sae.reconstruct_raw(x)
    sae.set_input_scale_(4.0)
    _, after = sae.reconstruct_raw(x)
    assert torch.allclose(before, after, atol=1e-5)


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match="sae.k"):
        SAEConfig(architecture="topk", d_in=4, d_sae=8, k=9)
    with pytest.raises(ConfigError, match="sae.architecture"):
        SAEConfig(architecture="nope", d_in=4, d_sae=8)


def test_load_missing_sae_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cfg.json"):
        load_sae(tmp_path)


def test_parallel_grad_removal_by_hand_on_rows_of_any_length():
    sae = make_sae({"architecture": "topk", "d_in": 2, "d_sae": 2, "k": 1})
    with torch.no_grad():
        sae.W_dec.copy_(torch.tensor([[2.0, 0.0], [1.0, 1.0]]))  # not unit norm: the projection still holds
    sae.W_dec.grad = torch.tensor([[3.0, 4.0], [1.0, 3.0]])
    sae.remove_parallel_decoder_grad_()
    # row 0: (3, 4) − ((3,4)·(1,0)) (1,0) = (0, 4); row 1: (1, 3) − 2·(1, 1) = (−1, 1)
    assert torch.allclose(sae.W_dec.grad, torch.tensor([[0.0, 4.0], [-1.0, 1.0]]))
