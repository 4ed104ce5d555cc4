"""The interpret and maira2 studies' rules on the tiny test config, for real (packaged SmolLM2, real corpora):
autointerp tables with their control columns, dashboards naming the sampled latents, steering table and
figure, the MAIRA-2-style tables."""

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[3]
TARGETS = [
    "results/tables/autointerp_summary.md",
    "results/tables/steering.md",
    "results/interpret/index.html",
    "results/tables/maira2_summary.md",
]


@pytest.mark.workflow
def test_interpret_targets(tiny_run):
    """Reads the session's one real run of config/test.yaml (tests/conftest.py)."""
    res = tiny_run / "results"
    for target in TARGETS:
        assert (tiny_run / target).is_file(), target
    scores = pd.read_csv(res / "tables" / "autointerp.csv")
    assert {
        "sae",
        "latent",
        "scorer",
        "explanation",
        "balanced_accuracy",
        "auroc",
        "control_balanced_accuracy",
        "control_auroc",
        "control_latent",
    } <= set(scores.columns)
    assert set(scores.scorer) == {"detection", "embedding"}
    assert scores.sae.nunique() == 2 and scores.control_balanced_accuracy.notna().any()
    summary = pd.read_csv(res / "tables" / "autointerp_summary.csv")
    assert {
        "detection_bacc",
        "detection_bacc_control",
        "embedding_auroc",
        "embedding_auroc_control",
        "detection_share_ge_0.8",
    } <= set(summary.columns)
    for sae, g in scores.groupby("sae"):
        index = (res / "interpret" / sae / "dashboard" / "index.html").read_text()
        pages = "".join(p.read_text() for p in (res / "interpret" / sae / "dashboard").glob("page_*.html"))
        for lat in g.latent.unique():
            assert f"#l{lat}'" in index and f"id='l{lat}'" in pages
    assert "dashboard/index.html" in (res / "interpret" / "index.html").read_text()
    # the per-SAE autointerp columns in the other studies' tables: the same numbers as the summary's
    by_sae = summary.set_index("sae")
    arch = pd.read_csv(res / "tables" / "architectures.csv").set_index("sae")
    ssae = pd.read_csv(res / "tables" / "ssae.csv")
    for sae in by_sae.index:
        assert arch.loc[sae, "autointerp_detection_bacc"] == pytest.approx(by_sae.loc[sae, "detection_bacc"])
    gsae_rows = ssae[ssae.sae == "gsae"]
    assert gsae_rows.autointerp_embedding_auroc_control.tolist() == pytest.approx(
        [by_sae.loc["gsae", "embedding_auroc_control"]] * len(gsae_rows)
    )
    assert ssae[ssae.sae != "gsae"].autointerp_detection_bacc.isna().all()  # not interpreted in the tiny run
    steer = pd.read_csv(res / "tables" / "steering.csv")
    assert {"concept", "control", "alpha", "mention", "perplexity"} <= set(steer.columns)
    assert (res / "figures" / "steering_dose_response.png").stat().st_size > 0
    # the MAIRA-2-style study (its SAE trained on the radlabels reports)
    filtering = pd.read_csv(res / "tables" / "maira2_filtering.csv")
    assert "kept" in set(filtering.reason) and 0 < filtering.share.sum() <= 1.0001
    findings = pd.read_csv(res / "tables" / "maira2_findings.csv")
    assert findings.auroc.between(0, 1).all() and "explanation" in findings.columns
    summary = pd.read_csv(res / "tables" / "maira2_summary.csv")
    assert "detection balanced accuracy, shuffled control" in set(summary.metric)
