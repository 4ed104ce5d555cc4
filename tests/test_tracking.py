"""saeflow.tracking: wandb on top of the metrics files, never in their way."""

import sys
import types

import pytest

from saeflow.tracking import Tracker


def test_disabled_is_a_no_op(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # importing wandb would now fail: it must not be imported
    tracker = Tracker(mode="disabled", group="test", name="run")
    assert tracker.run is None
    tracker.log({"loss": 1.0}, step=0)
    tracker.summary({"l0": 3.0})
    tracker.finish()


def test_unavailable_wandb_degrades_to_a_no_op(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    tracker = Tracker(mode="offline", name="run")
    assert tracker.run is None
    tracker.log({"loss": 1.0})
    tracker.finish()


def test_mode_and_group_reach_wandb(monkeypatch):
    """`wandb_mode: online` in the config is what train_sae passes as mode; runs are grouped by experiment."""
    calls = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: (
        calls.append(kw) or types.SimpleNamespace(log=lambda *a, **k: None, finish=lambda: None)
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    Tracker(mode="online", group="shift_pythia70m", name="gsae", config={"k": 1}).finish()
    assert (
        calls[0]["mode"] == "online" and calls[0]["group"] == "shift_pythia70m" and calls[0]["name"] == "gsae"
    )


def test_offline_writes_a_run_dir(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    tracker = Tracker(
        mode="offline",
        project="saeflow-test",
        group="experiment-a",
        name="gsae",
        config={"d_sae": 8},
        dir=str(tmp_path),
    )
    assert tracker.run is not None
    assert tracker.run.group == "experiment-a"
    for step in range(3):
        tracker.log({"loss": 1.0 / (step + 1)}, step=step)
    tracker.summary({"l0": 3.0})
    tracker.finish()
    assert tracker.run is None
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
