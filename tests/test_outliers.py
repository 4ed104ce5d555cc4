"""Norm outliers (attention-sink tokens): left out of training, splicing and scoring (saeflow.outliers)."""

from __future__ import annotations

import math

import torch
from store_helpers import sparse_data, write_store

from saeflow.activations import ActivationStore
from saeflow.evaluate import EvalBatch, _splice_inliers
from saeflow.outliers import inlier_mask, outlier_threshold
from saeflow.sae import SAEConfig
from saeflow.train import TrainConfig, train_sae


def test_threshold_is_ratio_times_median():
    norms = torch.tensor([1.0, 2.0, 3.0, 100.0, 4.0])  # median 3
    assert outlier_threshold(norms, 10.0) == 30.0
    assert outlier_threshold(norms, 0.0) == math.inf
    assert outlier_threshold(torch.zeros(0), 10.0) == math.inf
    x = torch.tensor([[3.0, 4.0], [30.0, 40.0], [0.0, 0.0]])  # norms 5, 50, 0
    assert inlier_mask(x, 10.0).tolist() == [True, False, True]


def _store_with_outliers(tmp_path, n=512, d=8):
    acts = sparse_data(n, d, n_features=16, per_token=2)
    acts[[5, 300]] *= 500.0  # two sink-like rows, norm ≈ 500× the others
    return ActivationStore(write_store(tmp_path / "acts", acts, shard_rows=128)), acts


def test_store_batches_leave_out_rows_above_max_norm(tmp_path):
    store, acts = _store_with_outliers(tmp_path)
    norms = acts.norm(dim=1)
    cut = float(norms.median()) * 10
    kept = torch.cat(list(store.iter_batches(100, shuffle=True, seed=1, max_norm=cut)))
    assert len(kept) == len(acts) - 2
    assert float(kept.norm(dim=1).max()) <= cut
    assert len(torch.cat(list(store.iter_batches(100, shuffle=False)))) == len(acts)
    assert store.mean_norm(10_000, max_norm=cut) < store.mean_norm(10_000) / 2


def test_training_ignores_outliers_and_records_the_cut(tmp_path):
    store, acts = _store_with_outliers(tmp_path)
    cfg = SAEConfig(architecture="topk", d_in=8, d_sae=32, k=2)
    kept = TrainConfig(lr=3e-3, batch_size=64, epochs=2, warmup_steps=2, checkpoint_every=0, seed=0)
    result = train_sae(cfg, kept, store, tmp_path / "sae")
    median = float(acts.float().norm(dim=1).median())
    assert math.isclose(result.metrics["outlier_max_norm"], 10 * median, rel_tol=0.05)  # sampled median, fp16
    everything = train_sae(
        cfg, TrainConfig(**{**kept.__dict__, "outlier_norm_ratio": 0.0}), store, tmp_path / "sae_all"
    )
    assert everything.metrics["outlier_max_norm"] is None
    # the two outliers dominate the input scale when kept
    assert everything.metrics["input_scale"] < result.metrics["input_scale"] / 2


def test_splice_leaves_position_0_padding_and_outliers_clean():
    d = 4
    h = torch.ones(2, 4, d)
    h[0, 2] *= 1000.0  # outlier
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    batch = EvalBatch(torch.zeros(2, 4, dtype=torch.long), mask, torch.ones(2, 3, dtype=torch.bool))
    seen, counts = [], {}

    def zero(rows):
        seen.append(rows.shape[0])
        return torch.zeros_like(rows)

    out = _splice_inliers(zero, batch, 10.0, counts)(h)
    assert seen == [4]  # positions (0,1), (0,3), (1,1), (1,2)
    assert counts == {"outliers": 1}
    assert (
        torch.equal(out[:, 0], h[:, 0])
        and torch.equal(out[0, 2], h[0, 2])
        and torch.equal(out[1, 3], h[1, 3])
    )
    assert out[0, 1].abs().sum() == 0 and out[0, 3].abs().sum() == 0 and out[1, 1:3].abs().sum() == 0
    everything = _splice_inliers(zero, batch, 0.0, {})(h)
    assert everything[0, 2].abs().sum() == 0
