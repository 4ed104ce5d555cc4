"""Config validation against config/schema.yaml: defaults filled in, bad keys named."""

from pathlib import Path

import pytest
import yaml

from saeflow.config import validate_config
from saeflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def _default():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_default_config_is_valid():
    resolved = validate_config(_default(), SCHEMA)
    assert resolved["model"]["layer"] == 15


def test_defaults_are_filled_in():
    cfg = _default()
    del cfg["evaluation"]["batch_size"]
    assert validate_config(cfg, SCHEMA)["evaluation"]["batch_size"] == 16


def test_wrong_type_names_the_key():
    cfg = _default()
    cfg["model"]["layer"] = "fifteen"
    with pytest.raises(ConfigError, match=r"model\.layer"):
        validate_config(cfg, SCHEMA)


def test_unknown_key_names_the_key_and_allowed_ones():
    cfg = _default()
    cfg["saes"]["gsae"]["kk"] = 3
    with pytest.raises(ConfigError, match=r"saes\.gsae.*'kk'.*allowed keys"):
        validate_config(cfg, SCHEMA)


def test_unknown_top_level_key():
    cfg = _default()
    cfg["evalution"] = {}
    with pytest.raises(ConfigError, match="evalution"):
        validate_config(cfg, SCHEMA)


def test_config_entry_is_a_plain_copy():
    from saeflow.config import config_entry

    config = {"assets": {"b": {"package": "x"}, "a": {"package": "y"}}}
    entry = config_entry(config, "assets", "b", noun="asset")
    assert entry == {"package": "x"}
    entry["package"] = "changed"  # a copy: the caller cannot alter the config through it
    assert config["assets"]["b"]["package"] == "x"


def test_config_entry_names_the_configured_ones():
    from saeflow.config import config_entry

    with pytest.raises(ConfigError, match=r"unknown corpus 'wiki'; configured corpora: general, medical"):
        config_entry({"corpora": {"medical": {}, "general": {}}}, "corpora", "wiki", noun="corpus")
    with pytest.raises(ConfigError, match=r"configured assets: none"):
        config_entry({}, "assets", "x", noun="asset")


def test_merge_config_merges_mappings_and_replaces_everything_else():
    from saeflow.config import merge_config

    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    merge_config(base, {"a": {"y": [3], "z": {"w": 0}}, "b": {"c": 1}})
    assert base == {"a": {"x": 1, "y": [3], "z": {"w": 0}}, "b": {"c": 1}}
