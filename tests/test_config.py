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


def test_yaml_anchors_and_merge_keys_are_not_duplicates(tmp_path):
    from saeflow.config import load_yaml_file

    path = tmp_path / "c.yaml"
    path.write_text("base: &b {lr: 0.1, k: 4}\nsaes:\n  a: {<<: *b, k: 8}\n  b: *b\nlist: [{x: 1}, {x: 2}]\n")
    data = load_yaml_file(path)
    assert data["saes"]["a"] == {"lr": 0.1, "k": 8} and data["saes"]["b"] == {"lr": 0.1, "k": 4}
    assert load_yaml_file(tmp_path / "c.yaml") == data
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert load_yaml_file(tmp_path / "empty.yaml") == {}


def test_duplicate_key_inside_a_list_item_names_its_path(tmp_path):
    from saeflow.config import load_yaml_file

    path = tmp_path / "c.yaml"
    path.write_text("bias_in_bios:\n  saes:\n    - {label: G, sae: gsae, sae: other}\n")
    with pytest.raises(
        ConfigError, match=r"key 'bias_in_bios\.saes\[0\]\.sae' is given twice \(lines 3 and 3\)"
    ):
        load_yaml_file(path)


def test_gguf_layer_count_skips_arrays_before_the_block_count(tmp_path):
    import struct

    from saeflow.config import model_layer_count

    def s(text):
        return struct.pack("<Q", len(text)) + text.encode()

    kv = [
        s("general.architecture") + struct.pack("<I", 8) + s("qwen2"),
        s("tokenizer.scores") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 0.1, 0.2, 0.3),
        s("tokenizer.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("b"),
        s("qwen2.block_count") + struct.pack("<I", 4) + struct.pack("<I", 24),
    ]
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv))
    assert model_layer_count(path) == (24, str(path))
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00")
    assert model_layer_count(tmp_path / "bad.gguf") is None


def test_device_check_accepts_cpu_and_names_the_key(monkeypatch):
    from saeflow import runtime

    assert runtime.check_device("cpu") == "cpu"
    monkeypatch.setattr(
        runtime, "torch_version", lambda: None
    )  # jobs bring their own torch: nothing to check
    assert runtime.check_device("cuda:1") == "cuda:1"
    with pytest.raises(ConfigError, match="config key 'extraction.device'"):
        runtime.check_device("tpu", key="extraction.device")
