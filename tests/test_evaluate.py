"""Spliced evaluation on a tiny random Llama: an identity SAE must leave the LM untouched."""

import math

import pytest
import torch
from tiny_models import TEXTS, save_tiny_model

from saeflow.evaluate import eval_batches, evaluate_baseline, evaluate_sae
from saeflow.models.causal_lm import load_lm
from saeflow.sae import make_sae

LAYER = 1


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_lm(save_tiny_model(tmp_path_factory.mktemp("m") / "tiny", "llama"))


def identity_sae(d):
    """ReLU SAE with latents relu(x), relu(−x) and decoder [I; −I]: x̂ = relu(x) − relu(−x) = x exactly."""
    sae = make_sae({"architecture": "relu", "d_in": d, "d_sae": 2 * d})
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_identity_sae_gives_clean_ce(lm):
    batches = eval_batches(lm, TEXTS, max_tokens=1000, batch_size=4, max_length=32)
    base = evaluate_baseline(lm, LAYER, batches)
    result = evaluate_sae(lm, LAYER, identity_sae(lm.d_model), batches, base)
    assert result.lm.ce_sae == pytest.approx(result.lm.ce_clean, abs=1e-6)
    assert result.lm.ce_clean == pytest.approx(base.ce_clean, abs=1e-6)
    assert result.lm.kl == pytest.approx(0.0, abs=1e-6)
    assert result.recon.fvu == pytest.approx(0.0, abs=1e-10)
    assert result.ce_loss_score == pytest.approx(1.0, abs=1e-5)
    assert result.lm.perplexity_clean == pytest.approx(math.exp(base.ce_clean))


def test_zero_ablation_differs_and_random_sae_scores_between(lm):
    batches = eval_batches(lm, TEXTS, max_tokens=1000, batch_size=4, max_length=32)
    base = evaluate_baseline(lm, LAYER, batches)
    assert base.ce_zero != pytest.approx(base.ce_clean, abs=1e-3)
    sae = make_sae({"architecture": "topk", "d_in": lm.d_model, "d_sae": 32, "k": 4}, seed=0)
    result = evaluate_sae(lm, LAYER, sae, batches, base)
    assert result.lm.kl > 0
    assert result.recon.l0 <= 4
    assert result.lm.n_tokens == base.n_tokens


def test_eval_batches_respect_token_budget_and_skip_first_prediction(lm):
    batches = eval_batches(lm, TEXTS, max_tokens=3, batch_size=1, max_length=32)
    # first text "w1 w2 w3 w4 w5": 5 tokens -> 4 predictions, minus the one from position 0 -> 3
    assert len(batches) == 1
    assert int(batches[0].predict.sum()) == 3
    assert not batches[0].predict[:, 0].any()
