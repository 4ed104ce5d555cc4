"""Convergence rows from training curves, against hand-computed values."""

import json

import pandas as pd
import pytest

from saeflow.studies.convergence.report import (
    convergence_row,
    convergence_table,
    plot_training_curves,
    relative_gain,
    with_controls,
)

CURVE = [
    {"step": 0, "tokens": 0, "fvu": 2.0, "l0": 30.0},
    {"step": 100, "tokens": 1000, "fvu": 0.40, "l0": 32.0},
    {"step": 200, "tokens": 2000, "fvu": 0.30, "l0": 32.0},
    {"step": 300, "tokens": 3000, "fvu": 0.29, "l0": 32.0},
    {"step": 400, "tokens": 4000, "fvu": 0.288, "l0": 32.0},
]


def test_relative_gain():
    assert relative_gain(0.5, 0.4) == pytest.approx(0.2)
    assert relative_gain(0.4, 0.5) == pytest.approx(-0.25)  # got worse
    assert relative_gain(0.0, 0.1) is None


def test_scratch_row_has_no_finetune_gain():
    spec = {"train_on": "general.train", "monitor_on": "general.heldout"}
    row = convergence_row("gsae", spec, {"curve": CURVE, "tokens_trained": 4000, "plateau_gain": 0.04})
    assert row.fvu_start == 2.0 and row.fvu_final == 0.288 and row.plateau_gain == 0.04
    assert row.finetune_gain is None and row.init_from == ""


def test_finetune_gain_is_measured_from_the_parent():
    spec = {"train_on": "medical.sel-random", "monitor_on": "general.heldout", "init_from": "gsae"}
    curve = [
        {"step": 0, "tokens": 0, "fvu": 0.300, "l0": 32},
        {"step": 49, "tokens": 50_000, "fvu": 0.297, "l0": 32},
    ]
    row = convergence_row("ctrl", spec, {"curve": curve, "tokens_trained": 50_000, "plateau_gain": None})
    assert row.finetune_gain == pytest.approx(0.01)  # (0.300 − 0.297) / 0.300
    assert convergence_row("x", spec, {"tokens_trained": 1}) is None  # no curve, no row


def test_table_and_figure(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"curve": CURVE, "tokens_trained": 4000, "plateau_gain": 0.04}))
    specs = {"gsae": {"train_on": "general.train"}, "other": {"train_on": "general.train"}}
    nocurve = tmp_path / "nocurve.json"
    nocurve.write_text(json.dumps({"tokens_trained": 5}))
    df = convergence_table(specs, {"gsae": path, "other": nocurve})
    assert df["sae"].tolist() == ["gsae"]
    plot_training_curves({"gsae": CURVE}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_control_gain_lands_on_the_parents_row():
    df = pd.DataFrame(
        {
            "sae": ["gsae", "gsae-control", "arch-x", "arch-x-control", "lonely"],
            "finetune_gain": [None, 0.004, None, 0.03, None],
        }
    )
    out = with_controls(df)
    assert out["control_gain"].tolist()[0::2][:2] == [0.004, 0.03]
    assert out["control_gain"].iloc[[1, 3, 4]].isna().all()
    assert out["converged"].tolist() == [True, None, False, None, None]
