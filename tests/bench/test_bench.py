"""python -m saeflow.bench: the optional reference trainers (SAELens, EleutherAI sparsify) and the eval
job."""

import importlib.util
import json
import sys

import pytest
from tiny_models import TEXTS, save_tiny_model

from saeflow.bench import __main__ as bench
from saeflow.bench.perf import eval_job, python_has, sparsify_rate


def test_python_has_checks_the_given_interpreter():
    assert python_has(sys.executable, "json")
    assert not python_has(sys.executable, "no_such_module_xyz")


def test_train_skips_absent_references_with_a_message(capsys, monkeypatch):
    monkeypatch.delenv("SAELENS_PYTHON", raising=False)
    monkeypatch.delenv("SPARSIFY_PYTHON", raising=False)
    monkeypatch.setattr("saeflow.bench.perf.python_has", lambda _python, _module: False)
    bench.main(
        [
            "train",
            "--d-in",
            "16",
            "--d-sae",
            "32",
            "--k",
            "4",
            "--batch",
            "64",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--path",
            "fast",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr()
    assert "reference=sparsify skipped" in out.err and "eai-sparsify" in out.err
    assert "reference=saelens skipped" in out.err
    assert "path=fast" in out.out and "vs_sparsify" not in out.out
    # both selection dtypes by default, each with its last-step loss; bf16 beside both matmul bounds
    lines = {line.split()[1]: line for line in out.out.splitlines()}
    assert set(lines) == {"path=fast", "path=fast_bf16"}
    assert "final_loss=" in lines["path=fast"] and "of_bound=" in lines["path=fast"]
    assert "of_bf16_bound=" in lines["path=fast_bf16"] and "vs_fast_fp32=" in lines["path=fast_bf16"]


@pytest.mark.skipif(importlib.util.find_spec("sparsify") is None, reason="eai-sparsify not installed here")
def test_sparsify_rate_runs():
    assert sparsify_rate(16, 64, 4, 32, 2) > 0


def test_eval_job_cached_equals_full(tmp_path):
    from saeflow.io import write_jsonl
    from saeflow.sae import make_sae

    model = save_tiny_model(tmp_path / "tiny", "llama")
    texts = tmp_path / "t.jsonl"
    write_jsonl(texts, [{"id": str(i), "text": t} for i, t in enumerate(TEXTS)])
    make_sae({"architecture": "topk", "d_in": 16, "d_sae": 32, "k": 4}, seed=0).save(tmp_path / "sae")
    job = {
        "model_dir": str(model),
        "sae_dir": str(tmp_path / "sae"),
        "texts": str(texts),
        "cache": str(tmp_path / "c.safetensors"),
        "layer": 1,
        "tokens": 1000,
        "batch_size": 4,
        "max_length": 32,
    }
    eval_job("build", **job)
    full, cached = eval_job("full", **job), eval_job("cached", **job)
    for key in ("fvu", "ce_sae", "kl", "l0"):
        assert cached[key] == pytest.approx(full[key], rel=1e-5), key
    assert "ce_loss_score_saelens" in cached
    json.dumps(cached)
    # the upper layers in bfloat16: same reconstruction (the SAE runs on the float32 cache), CE close
    low = eval_job("cached-ours-bf16", **job)
    assert low["fvu"] == cached["fvu"] and low["l0"] == cached["l0"]
    assert low["ce_sae"] == pytest.approx(cached["ce_sae"], abs=0.05) and low["ce_sae"] != cached["ce_sae"]
    assert "ce_loss_score_saelens" not in low
