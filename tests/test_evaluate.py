"""Spliced evaluation on tiny random LMs: an identity SAE leaves the LM untouched, the shared cache gives the
numbers of full forward passes, and SAELens' convention matches a hand computation."""

import math

import pytest
import torch
from tiny_models import TEXTS, save_tiny_model

from saeflow.evaluate import (
    EvalCache,
    build_cache,
    eval_batches,
    evaluate_baseline,
    evaluate_sae,
    evaluate_sae_cached,
    run_from_layer,
)
from saeflow.metrics import explained_variance, next_token_ce, prediction_mask
from saeflow.models.causal_lm import load_lm, splice
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


# --- the shared cache: the same numbers as full forward passes ----------------------------------------------

METRICS = (
    "l0",
    "fvu",
    "explained_variance",
    "ce_clean",
    "ce_sae",
    "ce_zero",
    "delta_ce",
    "kl",
    "ce_loss_score",
    "n_tokens",
    "n_outliers",
    "dead_fraction",
)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "neox"])
def test_cached_evaluation_matches_full_forward_passes(tmp_path, arch):
    model = load_lm(save_tiny_model(tmp_path / arch, arch))
    batches = eval_batches(model, TEXTS, max_tokens=1000, batch_size=4, max_length=32)
    base = evaluate_baseline(model, LAYER, batches)
    cache = build_cache(model, LAYER, batches)
    cache.save(tmp_path / "c.safetensors", tmp_path / "c.json")
    cache = EvalCache.load(tmp_path / "c.safetensors", tmp_path / "c.json")
    assert cache.ebar is not None  # every tiny model has a linear head: KL comes from the cached ē
    assert cache.baseline().ce_clean == pytest.approx(base.ce_clean, abs=1e-6)
    assert cache.baseline().ce_zero == pytest.approx(base.ce_zero, abs=1e-6)
    sae = make_sae({"architecture": "topk", "d_in": model.d_model, "d_sae": 32, "k": 4}, seed=0)
    full = evaluate_sae(model, LAYER, sae, batches, base).row()
    cached = evaluate_sae_cached(model, sae, cache).row()
    for key in METRICS:
        assert cached[key] == pytest.approx(full[key], rel=1e-5, abs=1e-6), key
    # a non-linear head falls back to re-running the clean upper pass: same numbers
    cache.ebar = None
    assert evaluate_sae_cached(model, sae, cache, saelens=False).row()["kl"] == pytest.approx(
        full["kl"], rel=1e-5
    )


def test_run_from_layer_equals_the_full_forward(lm):
    batch = eval_batches(lm, TEXTS, max_tokens=1000, batch_size=8, max_length=32)[0]
    cache = build_cache(lm, LAYER, [batch])
    full = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    upper, _ = run_from_layer(lm, LAYER, batch.input_ids, batch.attention_mask, cache.hidden[0])
    real = batch.attention_mask.bool()
    torch.testing.assert_close(upper[real], full[real].float(), rtol=1e-5, atol=1e-5)


def test_saelens_convention_by_hand(lm):
    """SAELens' run_evals convention: every real position (0 and outliers included) spliced / zero-ablated,
    the prediction from position 0 scored, explained variance over every row."""
    batches = eval_batches(lm, TEXTS, max_tokens=1000, batch_size=4, max_length=32)
    sae = make_sae({"architecture": "topk", "d_in": lm.d_model, "d_sae": 32, "k": 4}, seed=1)
    got = evaluate_sae_cached(lm, sae, build_cache(lm, LAYER, batches)).row()
    nll = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    n, xs, x_hats = 0, [], []
    for b in batches:
        every = prediction_mask(b.attention_mask)  # predictions from position 0 count too
        real = b.attention_mask.bool()

        def through(h, real=real):
            out = h.clone()
            out[real] = sae.reconstruct_raw(h[real])[1]
            xs.append(h[real])
            x_hats.append(out[real])
            return out

        def zeroed(h, real=real):
            out = h.clone()
            out[real] = 0
            return out

        with torch.inference_mode():
            logits = {"clean": lm.model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits}
            for name, fn in (("sae", through), ("zero", zeroed)):
                with splice(lm, LAYER, fn):
                    logits[name] = lm.model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
        for name, lg in logits.items():
            nll[name] += next_token_ce(lg.float(), b.input_ids, every).sum_nll
        n += int(every.sum())
    ce = {k: v / n for k, v in nll.items()}
    assert got["n_tokens_saelens"] == n > got["n_tokens"]
    assert got["ce_zero_saelens"] == pytest.approx(math.log(96), abs=1e-4)  # zeros everywhere: uniform
    assert got["ce_sae_saelens"] == pytest.approx(ce["sae"], rel=1e-5)
    assert got["ce_loss_score_saelens"] == pytest.approx(
        (ce["zero"] - ce["sae"]) / (ce["zero"] - ce["clean"]), rel=1e-4
    )
    ev = explained_variance(torch.cat(xs).float(), torch.cat(x_hats).float())
    assert got["explained_variance_saelens"] == pytest.approx(ev, rel=1e-5, abs=1e-6)
