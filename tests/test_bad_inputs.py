"""Bad inputs a new user makes: each gives exactly one line that names the culprit (file, key, SAE), no
traceback, and leaves no complete-looking output where a run had started.

Most cases call the library the way a script entry point does (`saeflow.runtime.run_main`: a SaeflowError
becomes one `saeflow error: ...` line on stderr); the script cases run the real adapters with a stand-in
`snakemake` object; a few run `snakemake -n` on a copy of the project (the config-time checks of the
Snakefile).
"""

from __future__ import annotations

import json
import os
import pickle
import runpy
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from store_helpers import sparse_data, write_store

from saeflow.config import (
    check_model_layers,
    load_config_files,
    load_yaml_file,
    model_layer_count,
    validate_config,
)
from saeflow.runtime import run_main

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


# --------------------------------------------------------------------------- helpers


def one_line(capsys, fn, *culprits: str) -> str:
    """Run `fn` as a script entry point does; its error must be one stderr line naming every culprit."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(fn)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("saeflow error: ") and "Traceback" not in err and 'File "' not in err, err
    for culprit in culprits:
        assert culprit in line, (culprit, line)
    return line


def base_config(**changes) -> dict:
    config = load_config_files(ROOT)
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return config


def registry(config):
    from saeflow.registry import sae_specs

    return lambda: sae_specs(validate_config(config, SCHEMA))


# --------------------------------------------------------------------------- YAML and config keys


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "overlay.yaml"
    bad.write_text("model:\n  layer: [15\nsaes: {}\n")
    one_line(capsys, lambda: load_yaml_file(bad), str(bad), "line 3", "YAML syntax error")


def test_yaml_tab_indentation_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "overlay.yaml"
    bad.write_text("model:\n\tlayer: 3\n")
    one_line(capsys, lambda: load_yaml_file(bad), str(bad), "line 2")


def test_duplicated_top_level_key_names_file_key_and_both_lines(tmp_path, capsys):
    bad = tmp_path / "overlay.yaml"
    bad.write_text("seed: 1\nmodel:\n  layer: 3\nseed: 2\n")
    one_line(capsys, lambda: load_yaml_file(bad), str(bad), "key 'seed'", "lines 1 and 4")


def test_duplicated_nested_key_names_its_path(tmp_path, capsys):
    bad = tmp_path / "overlay.yaml"
    bad.write_text("saes:\n  gsae:\n    k: 16\n    lr: 0.001\n    k: 32\n")
    one_line(capsys, lambda: load_yaml_file(bad), str(bad), "key 'saes.gsae.k'", "lines 3 and 5")


def test_config_file_that_is_not_a_mapping(tmp_path, capsys):
    bad = tmp_path / "overlay.yaml"
    bad.write_text("- model\n- layer\n")
    one_line(capsys, lambda: load_yaml_file(bad), str(bad), "mapping")


def test_overlay_syntax_error_through_load_config_files(tmp_path, capsys):
    bad = tmp_path / "overlay.yaml"
    bad.write_text("saes:\n  gsae: {k: 16\n")
    one_line(capsys, lambda: load_config_files(ROOT, bad), str(bad), "YAML syntax error")


def test_missing_overlay_file(tmp_path, capsys):
    one_line(capsys, lambda: load_config_files(ROOT, tmp_path / "nope.yaml"), "nope.yaml", "not found")


def test_wrong_type_names_the_key(capsys):
    one_line(capsys, lambda: validate_config(base_config(model__layer="fifteen"), SCHEMA), "model.layer")


def test_unknown_top_level_key(capsys):
    one_line(capsys, lambda: validate_config(base_config(evalution={}), SCHEMA), "evalution")


def test_unknown_sae_key_lists_the_allowed_ones(capsys):
    config = base_config()
    config["saes"]["gsae"]["kk"] = 3
    one_line(capsys, lambda: validate_config(config, SCHEMA), "saes.gsae", "'kk'", "allowed keys")


def test_device_cuda_with_a_cpu_only_torch(monkeypatch, capsys):
    from saeflow import runtime

    monkeypatch.setattr(runtime, "torch_version", lambda: "2.13.0+cpu")
    one_line(capsys, lambda: runtime.check_device("cuda"), "'device'", "2.13.0+cpu", "CPU-only")


def test_unknown_device_name(capsys):
    from saeflow.runtime import check_device

    one_line(capsys, lambda: check_device("gpu0"), "'device'", "gpu0")


def test_k_beyond_d_sae_at_config_time(capsys):
    config = base_config()
    config["saes"]["gsae"]["k"] = 10**6
    one_line(capsys, registry(config), "SAE 'gsae'", "k")


def test_unknown_architecture_at_config_time(capsys):
    config = base_config()
    config["saes"]["gsae"]["architecture"] = "topkk"
    one_line(capsys, registry(config), "gsae", "topkk")


def test_unknown_extra_key_at_config_time(capsys):
    config = base_config()
    config["saes"]["gsae"]["extra"] = {"fsat": True}
    one_line(capsys, registry(config), "gsae", "extra.fsat")


def test_init_from_cycle_names_the_saes(capsys):
    config = base_config()
    gsae = config["saes"]["gsae"]
    config["saes"].update({"a": {**gsae, "init_from": "b"}, "b": {**gsae, "init_from": "a"}})
    one_line(capsys, registry(config), "init_from cycle a -> b -> a")


def test_unknown_train_on_corpus(capsys):
    config = base_config()
    config["saes"]["gsae"]["train_on"] = "wikipedia.train"
    one_line(capsys, registry(config), "gsae", "wikipedia")


def test_unknown_eval_set(capsys):
    config = base_config()
    config["saes"]["gsae"]["eval_sets"] = ["general", "legal"]
    one_line(capsys, registry(config), "legal")


def test_unknown_corpus_name(capsys):
    from saeflow.corpus import corpus_spec

    one_line(
        capsys, lambda: corpus_spec(base_config(), "wiki"), "unknown corpus 'wiki'", "configured corpora"
    )


def test_bias_in_bios_unknown_data_key(capsys):
    config = base_config()
    config["bias_in_bios"]["data"]["txt_field"] = "Bio"
    one_line(capsys, lambda: validate_config(config, SCHEMA), "bias_in_bios.data", "txt_field")


# --------------------------------------------------------------------------- the model's layers


def _prepared(root: Path, config: dict, n_layers: int) -> None:
    from saeflow.paths import RunPaths

    paths = RunPaths.from_config(config)
    marker = root / paths.model_marker()
    marker.parent.mkdir(parents=True)
    marker.write_text(
        json.dumps({"source": paths.resolve(config["model"]["source"]), "n_layers": n_layers, "d_model": 576})
    )


def test_model_layer_beyond_the_prepared_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = validate_config(base_config(model__layer=40), SCHEMA)
    _prepared(tmp_path, config, 30)
    one_line(
        capsys, lambda: check_model_layers(config, {}), "model.layer is 40", "30 layers", "prepared.json"
    )


def test_an_sae_layer_beyond_the_prepared_model(tmp_path, monkeypatch, capsys):
    from saeflow.registry import sae_specs

    monkeypatch.chdir(tmp_path)
    config = base_config()
    config["saes"]["gsae"]["layer"] = 31
    config = validate_config(config, SCHEMA)
    _prepared(tmp_path, config, 30)
    one_line(capsys, lambda: check_model_layers(config, sae_specs(config)), "SAE 'gsae' layer is 31")


def _fake_gguf(path: Path, block_count: int) -> Path:
    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s)) + s.encode()

    kv = [
        string("general.architecture") + struct.pack("<I", 8) + string("llama"),
        string("llama.block_count") + struct.pack("<I", 4) + struct.pack("<I", block_count),
    ]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv))
    return path


def test_model_layer_beyond_a_gguf_source(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    gguf = _fake_gguf(tmp_path / "m.gguf", 12)
    assert model_layer_count(gguf) == (12, str(gguf))
    config = validate_config(base_config(model__source=str(gguf), model__layer=12), SCHEMA)
    one_line(capsys, lambda: check_model_layers(config, {}), "model.layer is 12", "m.gguf", "0..11")


def test_model_layer_beyond_a_local_model_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"num_hidden_layers": 4, "hidden_size": 8}))
    config = validate_config(base_config(model__source=str(tmp_path / "hf"), model__layer=4), SCHEMA)
    one_line(capsys, lambda: check_model_layers(config, {}), "model.layer is 4", "config.json", "0..3")


# --------------------------------------------------------------------------- assets and model sources


def test_asset_not_fetched_says_how(tmp_path, capsys):
    from saeflow.assets import require_asset

    one_line(capsys, lambda: require_asset("asset:smollm2/x.gguf", tmp_path), "asset 'smollm2'", "snakemake")


def test_model_source_that_does_not_exist(tmp_path, capsys):
    from saeflow.models.causal_lm import prepare_model

    one_line(
        capsys, lambda: prepare_model(str(tmp_path / "no.gguf"), tmp_path / "out"), "no.gguf", "model.source"
    )
    assert not (tmp_path / "out").exists()


def test_model_source_that_is_not_gguf(tmp_path, capsys):
    from saeflow.models.causal_lm import prepare_model

    (tmp_path / "weights.bin").write_bytes(b"x")
    one_line(
        capsys, lambda: prepare_model(str(tmp_path / "weights.bin"), tmp_path / "out"), "weights.bin", ".gguf"
    )
    assert not (tmp_path / "out").exists()


def test_model_dir_without_config(tmp_path, capsys):
    from saeflow.models.causal_lm import prepare_model

    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"x")
    one_line(capsys, lambda: prepare_model(str(tmp_path / "hf"), tmp_path / "out"), "hf", "config.json")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- corpora and data files


def test_truncated_heldout_texts_name_file_and_line(tmp_path, capsys):
    from saeflow.io import read_jsonl

    path = tmp_path / "general.heldout.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": "cut he')
    one_line(capsys, lambda: list(read_jsonl(path)), str(path), "line 2")


def test_texts_that_are_not_utf8(tmp_path, capsys):
    from saeflow.io import read_jsonl

    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"id": "a", "text": "\xff\xfe"}\n')
    one_line(capsys, lambda: list(read_jsonl(path)), str(path), "line 1", "UTF-8")


def test_corpus_source_with_a_bad_json_line(tmp_path, capsys):
    from saeflow.corpus import load_documents

    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a long enough document for the filter"}\n{"text": oops}\n')
    one_line(capsys, lambda: load_documents({"path": str(path)}, tmp_path), "docs.jsonl", "2")


def test_corpus_source_missing_text_column(tmp_path, capsys):
    from saeflow.corpus import load_documents

    path = tmp_path / "docs.csv"
    pd.DataFrame({"body": ["a long enough document for the filter"]}).to_csv(path, index=False)
    one_line(capsys, lambda: load_documents({"path": str(path)}, tmp_path), "docs.csv", "text")


def test_corpus_source_file_missing(tmp_path, capsys):
    from saeflow.corpus import load_documents

    one_line(capsys, lambda: load_documents({"path": str(tmp_path / "gone.jsonl")}, tmp_path), "gone.jsonl")


# --------------------------------------------------------------------------- Bias in Bios data


def _bios_csv(path: Path, **columns) -> Path:
    base = {
        "Bio": ["a bio of someone who works at the hospital"] * 4,
        "Profession": ["nurse", "surgeon"] * 2,
        "Gender": ["M", "F", "F", "M"],
    }
    pd.DataFrame({**base, **columns}).to_csv(path, index=False)
    return path


def test_bios_columns_that_need_mapping(tmp_path, capsys):
    from saeflow.studies.bias_in_bios.data import read_bios

    path = _bios_csv(tmp_path / "train.csv")
    one_line(capsys, lambda: read_bios(str(path)), "train.csv", "Bio, Profession, Gender", "text_field")


def test_bios_gender_labels_that_need_mapping(tmp_path, capsys):
    from saeflow.studies.bias_in_bios.data import read_bios

    path = _bios_csv(tmp_path / "train.csv", Gender=["H", "W", "W", "H"])
    one_line(
        capsys,
        lambda: read_bios({"path": str(path), "text_field": "Bio"}),
        "train.csv",
        "Gender",
        "gender_labels",
    )


def test_bios_profession_that_does_not_occur(tmp_path, capsys):
    from saeflow.studies.bias_in_bios.data import read_bios

    path = _bios_csv(tmp_path / "train.csv")
    one_line(
        capsys,
        lambda: read_bios({"path": str(path), "text_field": "Bio"}, professions=["professor", "nurse"]),
        "train.csv",
        "professor",
        "professions there",
    )


def test_bios_group_too_small(capsys):
    from saeflow.studies.bias_in_bios.data import SetSizes, build_sets, prepare_pool

    rows = [
        {"text": f"bio {i} of a {g} {p} who works long hours", "profession": p, "gender": g, "schema": "find"}
        for p in ("surgeon", "nurse")
        for g in "MF"
        for i in range(5)
    ]
    pool = prepare_pool(pd.DataFrame(rows), ["surgeon", "nurse"])
    one_line(
        capsys, lambda: build_sets(pool, SetSizes(3, 3, 3), 0), "group", "requested", "lower the set sizes"
    )


def test_bios_split_column_missing(tmp_path, capsys):
    from saeflow.studies.bias_in_bios.data import read_bios

    path = _bios_csv(tmp_path / "train.csv")
    one_line(
        capsys,
        lambda: read_bios({"path": str(path), "text_field": "Bio", "split": "test"}),
        "train.csv",
        "split_field",
    )


# --------------------------------------------------------------------------- SAE files


def _saved_sae(tmp_path: Path) -> Path:
    from saeflow.sae import SAEConfig, make_sae

    sae = make_sae(SAEConfig(architecture="topk", d_in=8, d_sae=16, k=2), seed=0)
    out = tmp_path / "sae"
    out.mkdir()
    (out / "cfg.json").write_text(json.dumps({"saeflow": {"sae": sae.cfg.to_dict()}}))
    save_file(
        {k: v.contiguous() for k, v in sae.weights_for_saving().items()}, str(out / "sae_weights.safetensors")
    )
    return out


def test_corrupt_sae_weights(tmp_path, capsys):
    from saeflow.sae import load_sae

    out = _saved_sae(tmp_path)
    weights = out / "sae_weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    one_line(capsys, lambda: load_sae(out), str(weights), "corrupt or truncated")


def test_sae_weights_of_the_wrong_shape(tmp_path, capsys):
    from saeflow.sae import load_sae

    out = _saved_sae(tmp_path)
    save_file(
        {
            "W_enc": torch.zeros(8, 4),
            "b_enc": torch.zeros(4),
            "W_dec": torch.zeros(4, 8),
            "b_dec": torch.zeros(8),
        },
        str(out / "sae_weights.safetensors"),
    )
    one_line(capsys, lambda: load_sae(out), "sae_weights.safetensors", "W_enc")


def test_sae_cfg_that_is_not_json(tmp_path, capsys):
    from saeflow.sae import load_sae

    out = _saved_sae(tmp_path)
    (out / "cfg.json").write_text("{not json")
    one_line(capsys, lambda: load_sae(out), "cfg.json", "not valid JSON")


def test_sae_folder_without_weights(tmp_path, capsys):
    from saeflow.sae import load_sae

    out = _saved_sae(tmp_path)
    (out / "sae_weights.safetensors").unlink()
    one_line(capsys, lambda: load_sae(out), str(out), "sae_weights.safetensors")


# --------------------------------------------------------------------------- activation manifests


@pytest.fixture(scope="module")
def acts(tmp_path_factory):
    return write_store(
        tmp_path_factory.mktemp("acts") / "acts", sparse_data(256, 16, 24, 3, seed=0), shard_rows=100
    )


def _copy_store(acts: Path, tmp_path: Path) -> Path:
    out = tmp_path / "acts"
    shutil.copytree(acts.parent, out)
    return out / acts.name


def test_activation_manifest_missing(tmp_path, capsys):
    from saeflow.activations import ActivationStore

    one_line(capsys, lambda: ActivationStore(tmp_path / "manifest.json"), "manifest.json")


def test_activation_manifest_truncated(acts, tmp_path, capsys):
    from saeflow.activations import ActivationStore

    manifest = _copy_store(acts, tmp_path)
    manifest.write_text(manifest.read_text()[:50])
    one_line(capsys, lambda: ActivationStore(manifest), str(manifest), "not valid JSON")


def test_activation_shard_missing(acts, tmp_path, capsys):
    from saeflow.activations import ActivationStore

    manifest = _copy_store(acts, tmp_path)
    shard = sorted(manifest.parent.glob("*.safetensors"))[1]
    shard.unlink()
    one_line(capsys, lambda: ActivationStore(manifest), shard.name, "missing")


def test_activations_of_another_width(acts, tmp_path, capsys):
    from saeflow.activations import ActivationStore
    from saeflow.sae import SAEConfig
    from saeflow.train import TrainConfig, train_sae

    def run():
        train_sae(
            SAEConfig(architecture="topk", d_in=32, d_sae=64, k=4),
            TrainConfig(batch_size=64),
            ActivationStore(acts),
            tmp_path / "sae",
        )

    one_line(capsys, run, "d_in", "d_model")
    assert not (tmp_path / "sae" / "cfg.json").exists()


# ----------------------------------------------------------------------- checkpoints: recovered, not executed


def _train(acts, out, **kw):
    from saeflow.activations import ActivationStore
    from saeflow.sae import SAEConfig
    from saeflow.train import TrainConfig, train_sae

    cfg = SAEConfig(architecture="topk", d_in=16, d_sae=32, k=3, dead_tokens=128)
    tcfg = TrainConfig(
        **{"lr": 3e-3, "batch_size": 64, "epochs": 1, "warmup_steps": 1, "checkpoint_every": 2, **kw}
    )
    return train_sae(cfg, tcfg, ActivationStore(acts), out)


def test_corrupt_checkpoint_is_discarded_with_one_warning(acts, tmp_path, caplog):
    from saeflow.train import checkpoint_dir

    ckpt = checkpoint_dir(tmp_path / "sae")
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text('{"format": "saeflow')
    with caplog.at_level("WARNING", logger="saeflow"):
        _train(acts, tmp_path / "sae")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "discarding checkpoint" in warnings[0] and str(ckpt) in warnings[0], (
        warnings
    )
    assert (tmp_path / "sae" / "cfg.json").is_file()


def test_planted_pickle_checkpoint_is_never_loaded(acts, tmp_path, caplog):
    from saeflow.train import checkpoint_dir

    ckpt = checkpoint_dir(tmp_path / "sae").parent  # .checkpoint/, where the pickled state.pt used to live
    ckpt.mkdir(parents=True)
    flag = tmp_path / "pwned"

    class Plant:
        def __reduce__(self):
            return (Path.touch, (flag,))

    (ckpt / "state.pt").write_bytes(pickle.dumps(Plant()))
    with caplog.at_level("WARNING", logger="saeflow"):
        _train(acts, tmp_path / "sae")
    assert not flag.exists()
    assert any("state.pt" in r.getMessage() and "pickle" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- the scripts: nothing left behind


def _run_script(name: str, capsys, **snakemake) -> str:
    fake = SimpleNamespace(threads=1, **snakemake)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / name), init_globals={"snakemake": fake}, run_name="__main__")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    lines = [
        ln for ln in err.splitlines() if ln.strip() and not ln.startswith("20")
    ]  # log lines carry a date
    assert len(lines) == 1 and lines[0].startswith("saeflow error: ") and "Traceback" not in err, err
    return lines[0]


def test_extraction_refuses_a_layer_beyond_the_model_before_any_work(tmp_path, capsys):
    model_dir = tmp_path / "models" / "tiny"
    model_dir.mkdir(parents=True)
    (model_dir / "prepared.json").write_text(json.dumps({"n_layers": 2, "d_model": 8}))
    out = tmp_path / "acts" / "manifest.json"
    line = _run_script(
        "extract_activations.py",
        capsys,
        log=[str(tmp_path / "x.log")],
        input=SimpleNamespace(model=str(model_dir / "prepared.json"), texts=str(tmp_path / "t.jsonl")),
        output=SimpleNamespace(manifest=str(out)),
        params=SimpleNamespace(
            model={"name": "tiny", "layer": 5, "dtype": "float32", "max_length": 8},
            extraction={},
            device="cpu",
        ),
    )
    assert "model.layer is 5" in line and "prepared.json" in line
    assert not out.parent.exists()


def test_prepare_model_fails_fast_on_a_layer_beyond_the_source(tmp_path, capsys):
    gguf = _fake_gguf(tmp_path / "m.gguf", 6)
    config = validate_config(base_config(model__source=str(gguf), model__layer=8), SCHEMA)
    marker = tmp_path / "models" / "m" / "prepared.json"
    line = _run_script(
        "prepare_model.py",
        capsys,
        log=[str(tmp_path / "x.log")],
        config=config,
        output=SimpleNamespace(marker=str(marker)),
        params=SimpleNamespace(model={"name": "m", "layer": 8, "dtype": "float32"}, source=str(gguf)),
    )
    assert "model.layer is 8" in line and "m.gguf" in line
    assert not marker.parent.exists()


def test_training_on_a_missing_gpu_stops_before_any_work(tmp_path, monkeypatch, capsys):
    from saeflow import runtime

    monkeypatch.setattr(runtime, "torch_version", lambda: "2.13.0+cpu")
    out = tmp_path / "sae" / "cfg.json"
    line = _run_script(
        "train_sae.py",
        capsys,
        log=[str(tmp_path / "x.log")],
        input=SimpleNamespace(acts=str(tmp_path / "none.json")),
        output=SimpleNamespace(cfg=str(out), metrics=str(tmp_path / "m.json")),
        params=SimpleNamespace(sae={}, device="cuda", name="gsae", model={}),
        config={},
    )
    assert "'device'" in line and not out.parent.exists()


# ---------------------------------------------------------------------- snakemake -n on a copy of the project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The project with its own config/ (to break config.yaml); code folders linked."""
    root = tmp_path_factory.mktemp("project")
    for name in ("workflow", "scripts", "src", "envs"):
        (root / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "Snakefile", root / "Snakefile")
    shutil.copytree(ROOT / "config", root / "config")
    return root


def _dry_run(root: Path, workdir: Path, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--snakefile",
            str(root / "Snakefile"),
            "--directory",
            str(workdir),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode != 0
    err = out.stdout + out.stderr
    lines = [ln for ln in err.splitlines() if ln.startswith("saeflow config error")]
    assert len(lines) == 1 and "Traceback" not in err and 'File "' not in err, err[-3000:]
    return lines[0]


def test_dry_run_names_a_syntax_error_in_config_yaml(project, tmp_path):
    config = project / "config" / "config.yaml"
    good = config.read_text()
    try:
        config.write_text(good.replace("  layer: 15\n", "  layer: [15\n", 1))
        line = _dry_run(project, tmp_path)
    finally:
        config.write_text(good)
    assert "config.yaml: YAML syntax error at line" in line


def test_dry_run_refuses_a_duplicated_key_in_an_overlay(project, tmp_path):
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("model:\n  layer: 3\nseed: 1\nmodel:\n  layer: 4\n")
    line = _dry_run(project, tmp_path, "--configfile", str(overlay))
    assert "mine.yaml: key 'model' is given twice (lines 1 and 4)" in line


def test_dry_run_checks_sae_specs_and_layers_at_config_time(project, tmp_path):
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("saes:\n  gsae:\n    k: 100000\n")
    assert "SAE 'gsae': k must be between 1 and d_sae" in _dry_run(
        project, tmp_path, "--configfile", str(overlay)
    )
    config = validate_config(base_config(model__layer=44), SCHEMA)
    _prepared(tmp_path, config, 30)
    overlay.write_text("model:\n  layer: 44\n")
    line = _dry_run(project, tmp_path, "--configfile", str(overlay))
    assert "model.layer is 44" in line and "prepared.json" in line
