"""TracIn: the closed-form per-token gradient dot products against a hand computation and autograd, the
document means, and the score over real snapshots of a trained SAE."""

import json

import numpy as np
import pytest
import torch
from store_helpers import sparse_data, write_store

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError, DataError
from saeflow.sae import SAEConfig, make_sae
from saeflow.sae.kernels import topk_encode
from saeflow.sae.topk import topk_mask_values
from saeflow.studies.ssae.tracin import (
    SeedGradient,
    document_means,
    read_snapshots,
    seed_gradient,
    token_dots,
    tracin_scores,
)
from saeflow.train import TrainConfig, train_sae


def _identity_sae():
    sae = make_sae(SAEConfig(architecture="topk", d_in=2, d_sae=2, k=1))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(2))
        sae.W_dec.copy_(torch.eye(2))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_self_influence_by_hand():
    # x = (2, 1): latent 0 wins (k = 1), f = 2, x̂ = (2, 0), r = (0, −1), ℓ = 1.
    # ∂ℓ/∂W_dec,0 = 2·f·r = (0, −4) (orthogonal to the unit row (1, 0): the projection keeps it);
    # δ_0 = 2⟨r, W_dec,0⟩ = 0, so W_enc and b_enc get nothing; ∂ℓ/∂b_dec = 2r = (0, −2).
    # Self-influence ‖∇ℓ‖² = 16 + 4 = 20.
    sae = _identity_sae()
    x = torch.tensor([[2.0, 1.0]])
    grad = seed_gradient(sae, x)
    assert torch.allclose(grad.W_dec, torch.tensor([[0.0, -4.0], [0.0, 0.0]]))
    assert torch.allclose(grad.b_dec, torch.tensor([0.0, -2.0]))
    assert torch.count_nonzero(grad.W_enc) == 0 and torch.count_nonzero(grad.b_enc) == 0
    assert token_dots(sae, x, grad).tolist() == pytest.approx([20.0])


def test_encoder_terms_by_hand():
    # x = (2, 1) against a seed gradient that is 1 on b_enc,0 only: the dot is δ_0 = 2⟨r, W_dec,0⟩ with a
    # decoder row (1, 1)/√2 (so r = f·W_dec,0 − x has a component along it)
    sae = _identity_sae()
    with torch.no_grad():
        sae.W_dec[0] = torch.tensor([1.0, 1.0]) / 2**0.5
    x = torch.tensor([[2.0, 1.0]])
    r = 2 * sae.W_dec[0].detach() - x[0]
    delta = 2 * float(r @ sae.W_dec[0].detach())
    g = SeedGradient(torch.zeros(2, 2), torch.tensor([1.0, 0.0]), torch.zeros(2, 2), torch.zeros(2))
    assert token_dots(sae, x, g).tolist() == pytest.approx([delta])


@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_matches_autograd(seed):
    torch.manual_seed(seed)
    sae = make_sae(SAEConfig(architecture="topk", d_in=8, d_sae=32, k=3), seed=seed)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.3)
    x = torch.randn(20, 8)
    grad = seed_gradient(sae, torch.randn(12, 8))
    want = []
    for row in x:
        recon = topk_mask_values(sae.pre_acts(row[None]), 3) @ sae.W_dec + sae.b_dec
        loss = (recon - row).pow(2).sum()
        g = torch.autograd.grad(loss, [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec])
        want.append(sum(float((a * b).sum()) for a, b in zip(g, grad.__dict__.values(), strict=True)))
    assert token_dots(sae, x, grad).tolist() == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_bfloat16_selection_gives_the_same_dots_when_it_picks_the_same_latents():
    """An SAE trained with select_dtype bfloat16 (the default run's) picks its latents in bfloat16 here too;
    the values, hence the dots, stay exact: equal to the float32 selection's wherever the same latents win."""
    torch.manual_seed(0)
    exact = make_sae(SAEConfig(architecture="topk", d_in=8, d_sae=32, k=3), seed=0)
    low = make_sae(SAEConfig(architecture="topk", d_in=8, d_sae=32, k=3, select_dtype="bfloat16"), seed=0)
    low.load_state_dict(exact.state_dict())
    x = torch.randn(50, 8)
    grad = seed_gradient(exact, torch.randn(12, 8))
    picked = [
        torch.sort(topk_encode(x, s.W_enc, s.b_enc, s.b_dec, 3, select_dtype=s.select_dtype).indices).values
        for s in (exact, low)
    ]
    same = (picked[0] == picked[1]).all(-1)
    assert same.sum() >= 40  # most rows have no near-tie
    assert torch.allclose(
        token_dots(low, x, grad)[same], token_dots(exact, x, grad)[same], rtol=1e-4, atol=1e-5
    )


def test_document_means():
    got = document_means(torch.tensor([1.0, 3.0, 5.0, 2.0]), torch.tensor([0, 0, 2, 2]), 4)
    assert got[0] == 2 and got[2] == 3.5 and torch.isnan(got[1]) and torch.isnan(got[3])


def test_scores_sum_lr_weighted_snapshots_and_favour_seed_like_documents(tmp_path):
    raw = sparse_data(1536, 16, 48, 3, seed=0) * 5.0
    store = ActivationStore(write_store(tmp_path / "acts", raw[:1024], shard_rows=256))
    cfg = SAEConfig(architecture="topk", d_in=16, d_sae=64, k=4)
    tcfg = TrainConfig(lr=3e-3, batch_size=64, epochs=1, warmup_steps=2, checkpoint_every=0, snapshots=3)
    result = train_sae(cfg, tcfg, store, tmp_path / "sae")
    (tmp_path / "sae" / "metrics.json").write_text(json.dumps(result.metrics))
    snaps = read_snapshots(tmp_path / "sae")
    assert [s.step for s in snaps] == [5, 11, 16]
    # the subdomain: held-out rows shifted along one direction the SAE never saw; seed-like candidates share
    # the shift, the others are held-out rows of the training distribution
    shift = torch.zeros(16)
    shift[0] = 8.0
    seeds = raw[1024:1088] + shift
    rows = torch.cat([raw[1088:1152] + shift, raw[1152:1216]])
    doc_index = torch.arange(128) // 8  # 16 documents of 8 rows: 8 seed-like, 8 not
    scores = tracin_scores(tmp_path / "sae", snaps, rows, doc_index, 16, seeds)
    assert scores.per_snapshot.shape == (3, 16)
    assert np.allclose(scores.scores, np.asarray(scores.lrs) @ scores.per_snapshot)
    assert scores.scores[:8].mean() > scores.scores[8:].mean()


def test_snapshots_are_checked(tmp_path):
    sae_dir = tmp_path / "sae"
    sae_dir.mkdir()
    (sae_dir / "metrics.json").write_text(json.dumps({"steps": 3}))
    with pytest.raises(ConfigError, match="snapshots"):
        read_snapshots(sae_dir)
    (sae_dir / "snapshots").mkdir()
    (sae_dir / "snapshots" / "a.safetensors").write_bytes(b"changed")
    entry = {"step": 3, "lr": 0.1, "file": "snapshots/a.safetensors", "sha256": "0" * 64}
    (sae_dir / "metrics.json").write_text(json.dumps({"snapshots": [entry]}))
    with pytest.raises(DataError, match="a.safetensors"):
        read_snapshots(sae_dir)
