"""The trainer: deterministic, resumable after a kill, learns, saves an SAE that works on raw activations."""

import json

import pytest
import torch
from store_helpers import KillAt, Killed, sparse_data, write_store

from saeflow.activations import ActivationStore
from saeflow.metrics import fvu
from saeflow.sae import ARCHITECTURES, SAEConfig, load_sae
from saeflow.train import CurvePoint, TrainConfig, checkpoint_dir, train_sae

D, M = 16, 64


@pytest.fixture(scope="module")
def raw():
    # residual-like scale (norm ≈ 40, far from the √d the trainer normalises to) so input scaling matters
    return sparse_data(1024, D, 48, 3, seed=0) * 12.0


@pytest.fixture()
def store(tmp_path, raw):
    return ActivationStore(write_store(tmp_path / "acts", raw, shard_rows=200))


def _cfg(arch="topk", **kw):
    return SAEConfig(architecture=arch, d_in=D, d_sae=M, k=4, dead_tokens=256, **kw)


def _tcfg(**kw):
    base = {
        "lr": 3e-3,
        "batch_size": 64,
        "epochs": 1,
        "warmup_steps": 2,
        "checkpoint_every": 0,
        "log_every": 1,
        "seed": 0,
    }
    return TrainConfig(**{**base, **kw})


def _weights(sae):
    return {k: v.detach().clone() for k, v in sae.state_dict().items()}


def test_same_seed_same_run_and_other_seed_differs(tmp_path, store):
    a = train_sae(_cfg(), _tcfg(), store, tmp_path / "a")
    b = train_sae(_cfg(), _tcfg(), store, tmp_path / "b")
    c = train_sae(_cfg(), _tcfg(seed=1), store, tmp_path / "c")
    wa, wb = _weights(a.sae), _weights(b.sae)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [p["loss"] for p in a.metrics["history"]] == [p["loss"] for p in b.metrics["history"]]
    assert not torch.equal(wa["W_enc"], _weights(c.sae)["W_enc"])


def test_loss_decreases_and_l0_is_k(tmp_path, store):
    result = train_sae(_cfg(), _tcfg(epochs=2), store, tmp_path / "sae")
    hist = result.metrics["history"]
    first, last = sum(p["loss"] for p in hist[:3]) / 3, sum(p["loss"] for p in hist[-3:]) / 3
    assert last < 0.5 * first
    assert all(p["l0"] <= 4 for p in hist)
    final = result.metrics["final"]
    assert final is not None and 0 < final["fvu"] < 0.5 and final["l0"] <= 4
    assert result.metrics["tokens_trained"] == 2 * 1024


@pytest.mark.parametrize("arch", ["topk", "relu", "ortsae"])
def test_resume_after_kill_reproduces_the_uninterrupted_run(tmp_path, store, arch):
    if arch not in ARCHITECTURES:
        pytest.skip(f"{arch} is not registered")
    # 32 steps; the tail metrics start at step 28 (90%), so the kill at 30 also tests the restored accumulator
    tcfg = _tcfg(epochs=2, checkpoint_every=8)
    whole = train_sae(_cfg(arch), tcfg, store, tmp_path / "whole")
    with pytest.raises(Killed):
        train_sae(_cfg(arch), tcfg, store, tmp_path / "resumed", tracker=KillAt(30))
    assert (checkpoint_dir(tmp_path / "resumed") / "tensors.safetensors").is_file()
    assert not (tmp_path / "resumed" / "cfg.json").exists()  # nothing looks complete after the kill
    resumed = train_sae(_cfg(arch), tcfg, store, tmp_path / "resumed")
    assert resumed.metrics["resumed_from_step"] == 24
    assert not checkpoint_dir(tmp_path / "resumed").exists()
    w1, w2 = _weights(whole.sae), _weights(resumed.sae)
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k
    assert resumed.metrics["history"] == whole.metrics["history"]
    assert resumed.metrics["final"] == whole.metrics["final"]
    assert resumed.metrics["tokens_trained"] == whole.metrics["tokens_trained"]


def test_input_scale_is_folded_on_save(tmp_path, store, raw):
    result = train_sae(_cfg(), _tcfg(epochs=2), store, tmp_path / "sae")
    scale = result.sae.input_scale
    assert scale == pytest.approx(D**0.5 / store.manifest.mean_norm, rel=0.05)  # ≈ √d / mean norm
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["saeflow"]["input_scale"] == pytest.approx(scale)
    loaded = load_sae(tmp_path / "sae")
    assert loaded.input_scale == 1.0
    x = raw[:256]
    f, recon = loaded.reconstruct_raw(x)  # raw activations in, raw-scale reconstruction out
    f_ref, recon_ref = result.sae.reconstruct_raw(x)
    assert torch.allclose(recon, recon_ref, rtol=1e-4, atol=1e-3)
    assert torch.allclose(f, f_ref, rtol=1e-4, atol=1e-4)
    assert fvu(x, recon) < 0.5
    assert fvu(x, recon) == pytest.approx(result.metrics["final"]["fvu"], abs=0.1)


def test_dense_and_fast_topk_train_alike(tmp_path, store):
    fast = train_sae(_cfg(), _tcfg(), store, tmp_path / "fast")
    dense = train_sae(_cfg(extra={"fast": False}), _tcfg(), store, tmp_path / "dense")
    for a, b in zip(fast.metrics["history"], dense.metrics["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_plateau_gain_by_hand():
    from saeflow.train import plateau_gain

    curve = [
        CurvePoint(step=0, tokens=0, fvu=1.0, l0=4),
        CurvePoint(step=10, tokens=400, fvu=0.5, l0=4),
        CurvePoint(step=20, tokens=800, fvu=0.40, l0=4),
        CurvePoint(step=25, tokens=1000, fvu=0.38, l0=4),
    ]
    # last quarter of 1000 tokens starts after 750: the reference is the point at 400 tokens (fvu 0.5)
    assert plateau_gain(curve) == pytest.approx((0.5 - 0.38) / 0.5)
    assert plateau_gain(curve, tail=0.5) == pytest.approx((0.5 - 0.38) / 0.5)
    assert plateau_gain(curve, tail=0.1) == pytest.approx((0.40 - 0.38) / 0.40)
    assert plateau_gain(curve[:1]) is None


def test_training_curve_is_scored_on_the_monitor_set_and_changes_nothing(tmp_path, store, raw):
    monitor = ActivationStore(write_store(tmp_path / "held", raw[:300], shard_rows=100))
    plain = train_sae(_cfg(), _tcfg(epochs=2), store, tmp_path / "plain")
    watched = train_sae(
        _cfg(), _tcfg(epochs=2, monitor_every=10), store, tmp_path / "watched", monitor=monitor
    )
    wa, wb = _weights(plain.sae), _weights(watched.sae)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # the monitor draws no shared random numbers
    assert "curve" not in plain.metrics
    curve = watched.metrics["curve"]
    assert [p["step"] for p in curve] == [0, 10, 20, 30, 32]  # 32 steps: every 10 and the last
    assert [p["tokens"] for p in curve] == [0, 640, 1280, 1920, 2048]
    assert curve[-1]["fvu"] < 0.5 * curve[0]["fvu"]
    # the last point is the saved SAE's FVU on the monitor rows
    saved = load_sae(tmp_path / "watched")
    x = torch.cat(list(monitor.iter_batches(300, shuffle=False)))  # as stored
    assert curve[-1]["fvu"] == pytest.approx(fvu(x, saved.reconstruct_raw(x).recon), rel=1e-4)
    assert watched.metrics["plateau_gain"] is not None


def test_snapshots_are_taken_evenly_with_their_mean_lr_and_change_nothing(tmp_path, store):
    plain = train_sae(_cfg(), _tcfg(epochs=2, decay_fraction=0.5), store, tmp_path / "plain")
    snapped = train_sae(_cfg(), _tcfg(epochs=2, decay_fraction=0.5, snapshots=4), store, tmp_path / "snap")
    wa, wb = _weights(plain.sae), _weights(snapped.sae)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    entries = snapped.metrics["snapshots"]
    assert [e["step"] for e in entries] == [8, 16, 24, 32]  # 32 steps
    # lr 3e-3, warm-up 2 steps (factors 0.5, 1), linear decay over the last 16 steps (16/16 ... 1/16)
    assert entries[0]["lr"] == pytest.approx(3e-3 * (0.5 + 7) / 8)
    assert entries[1]["lr"] == pytest.approx(3e-3)
    assert entries[2]["lr"] == pytest.approx(3e-3 * sum(range(9, 17)) / 16 / 8)
    assert entries[3]["lr"] == pytest.approx(3e-3 * sum(range(1, 9)) / 16 / 8)
    # the last snapshot is the saved SAE's weights
    from safetensors.torch import load_file

    last = load_file(str(tmp_path / "snap" / entries[-1]["file"]))
    saved = load_file(str(tmp_path / "snap" / "sae_weights.safetensors"))
    assert all(torch.equal(last[k], saved[k]) for k in ("W_enc", "b_enc", "W_dec", "b_dec"))
    assert "snapshots" not in plain.metrics and not (tmp_path / "plain" / "snapshots").exists()


def test_a_fresh_run_removes_another_runs_snapshots(tmp_path, store):
    stale = tmp_path / "sae" / "snapshots" / "step_0000999.safetensors"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    train_sae(_cfg(), _tcfg(snapshots=1), store, tmp_path / "sae")
    assert not stale.exists()
