"""Per-SAE columns published by studies (saeflow.tables.read_sae_columns) and who publishes them."""

import json

import pytest

from saeflow.errors import DataError
from saeflow.studies import sae_column_files
from saeflow.tables import read_sae_columns


def test_read_sae_columns_merges_objects_and_refuses_others(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"x_a": 1.0, "x_b": 2}))
    (tmp_path / "b.json").write_text(json.dumps({"y_c": "text"}))
    assert read_sae_columns([tmp_path / "a.json", tmp_path / "b.json"]) == {
        "x_a": 1.0,
        "x_b": 2,
        "y_c": "text",
    }
    assert read_sae_columns([]) == {}
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="c.json: expected a JSON object"):
        read_sae_columns([tmp_path / "c.json"])


def test_the_interpret_study_publishes_columns_for_the_saes_it_interprets():
    saes = {"gsae": {"architecture": "topk"}, "arch-relu": {"architecture": "relu"}, "other": {}}
    config = {
        "results_dir": "res",
        "model": {"name": "lm"},
        "interpret": {"saes": ["gsae", "architecture:relu"]},
    }
    assert sae_column_files(config, saes) == {
        "gsae": ["res/interpret/gsae/columns.json"],
        "arch-relu": ["res/interpret/arch-relu/columns.json"],
    }
    assert sae_column_files({**config, "interpret": None}, saes) == {}
