"""Checkpoints hold no pickle, belong to one training spec, and never block a rerun when damaged."""

import json
import logging
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file
from store_helpers import KillAt, Killed, sparse_data, write_store

from saeflow.activations import ActivationStore
from saeflow.sae import SAEConfig
from saeflow.train import TrainConfig, checkpoint_dir, train_sae

D, M = 16, 64


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    raw = sparse_data(512, D, 48, 3, seed=0) * 12.0
    return ActivationStore(write_store(tmp_path_factory.mktemp("acts") / "acts", raw, shard_rows=200))


def _cfg():
    return SAEConfig(architecture="topk", d_in=D, d_sae=M, k=4, dead_tokens=256)


def _tcfg(**kw):
    # 16 steps, checkpoints at 4, 8, 12
    base = {
        "lr": 3e-3,
        "batch_size": 64,
        "epochs": 2,
        "warmup_steps": 2,
        "checkpoint_every": 4,
        "log_every": 1,
    }
    return TrainConfig(**{**base, **kw})


def _killed_run(out, store, **kw):
    with pytest.raises(Killed):
        train_sae(_cfg(), _tcfg(**kw), store, out, tracker=KillAt(10))
    assert (checkpoint_dir(out) / "state.json").is_file()


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


class _Planted:
    """Unpickling this creates a file: the proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_at_the_old_path_is_not_executed(tmp_path, store, caplog):
    out, marker = tmp_path / "sae", tmp_path / "pwned"
    legacy = out / ".checkpoint" / "state.pt"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(pickle.dumps({"sae": _Planted(marker)}))
    pickle.loads(legacy.read_bytes()).get("sae").close()  # the plant works when unpickled ...
    marker.unlink()
    with caplog.at_level(logging.WARNING, logger="saeflow.train"):
        result = train_sae(_cfg(), _tcfg(), store, out)
    assert not marker.exists()  # ... and training never unpickled it
    assert not legacy.exists() and "state.pt" in caplog.text
    assert result.metrics["resumed_from_step"] == 0


def test_checkpoint_files_are_json_and_safetensors_only(tmp_path, store):
    out = tmp_path / "sae"
    _killed_run(out, store)
    files = sorted(p.name for p in checkpoint_dir(out).iterdir())
    assert files == ["state.json", "tensors.safetensors"]
    state = json.loads((checkpoint_dir(out) / "state.json").read_text())
    assert state["step"] == 8 and len(state["spec_hash"]) == 64 and isinstance(state["rng"]["cpu"], str)
    assert "opt.0.exp_avg" in load_file(str(checkpoint_dir(out) / "tensors.safetensors"))


def test_a_checkpoint_of_another_spec_is_discarded(tmp_path, store, caplog):
    out = tmp_path / "sae"
    _killed_run(out, store, lr=1e-2)
    with caplog.at_level(logging.WARNING, logger="saeflow.train"):
        resumed = train_sae(_cfg(), _tcfg(lr=3e-3), store, out)
    assert resumed.metrics["resumed_from_step"] == 0
    assert "another training spec" in caplog.text
    fresh = train_sae(_cfg(), _tcfg(lr=3e-3), store, tmp_path / "fresh")
    assert _same_weights(resumed.sae, fresh.sae)
    # how often to checkpoint does not change the weights: such a checkpoint is kept
    _killed_run(tmp_path / "other", store)
    again = train_sae(_cfg(), _tcfg(checkpoint_every=8), store, tmp_path / "other")
    assert again.metrics["resumed_from_step"] == 8


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wrong_shape(path):
    tensors = load_file(str(path))
    tensors["sae.W_enc"] = torch.zeros(D, M + 1)
    save_file(tensors, str(path))


def _wrong_opt_shape(path):
    tensors = load_file(str(path))
    tensors["opt.0.exp_avg"] = torch.zeros(3)
    save_file(tensors, str(path))


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: _truncate(d / "tensors.safetensors"),
        lambda d: (d / "tensors.safetensors").unlink(),
        lambda d: _wrong_shape(d / "tensors.safetensors"),
        lambda d: _wrong_opt_shape(d / "tensors.safetensors"),
        lambda d: _truncate(d / "state.json"),
        lambda d: (d / "state.json").write_text(
            (d / "state.json").read_text().replace('"rng"', '"rng_gone"')
        ),
    ],
    ids=[
        "truncated",
        "tensors-missing",
        "wrong-shape",
        "wrong-opt-shape",
        "json-truncated",
        "json-key-missing",
    ],
)
def test_a_damaged_checkpoint_is_discarded_with_a_warning(tmp_path, store, caplog, damage):
    out = tmp_path / "sae"
    _killed_run(out, store)
    damage(checkpoint_dir(out))
    with caplog.at_level(logging.WARNING, logger="saeflow.train"):
        resumed = train_sae(_cfg(), _tcfg(), store, out)
    assert resumed.metrics["resumed_from_step"] == 0
    assert "discarding checkpoint" in caplog.text and "starts over" in caplog.text
    assert not checkpoint_dir(out).exists()
    fresh = train_sae(_cfg(), _tcfg(), store, tmp_path / "fresh")
    assert _same_weights(resumed.sae, fresh.sae)
