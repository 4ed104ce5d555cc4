"""The recsys study in the real DAG on the tiny test config: SASRec trained on MovieLens-100K (the recbole
wheel), its SAEs trained by the core rule, the four tables and two figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[3]
TARGETS = [f"results/tables/recsys_{t}.csv" for t in ("model", "sae", "concepts", "ablation")] + [
    "results/figures/recsys_confidence_hist.png",
    "results/figures/recsys_ablation.png",
]


@pytest.mark.workflow
def test_tiny_recsys_run(tiny_run):
    """Reads the session's one real run of config/test.yaml (tests/conftest.py)."""
    tmp_path = tiny_run
    for target in TARGETS:
        assert (tiny_run / target).is_file(), target
    tables = tmp_path / "results" / "tables"
    model = pd.read_csv(tables / "recsys_model.csv")
    assert {"method", "protocol", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20"} <= set(
        model.columns
    )
    full = model[model.protocol == "full ranking"].set_index("method")
    assert full.loc["SASRec", "HR@10"] > full.loc["Popularity", "HR@10"]
    assert (model["HR@10"] >= model["NDCG@10"]).all() and model["HR@20"].between(0, 1).all()

    sae = pd.read_csv(tables / "recsys_sae.csv").set_index("sae")
    trained = sae[sae.kind == "sae"]
    assert list(trained.index) == ["recsys-topk-k4", "recsys-topk-k8"]
    assert (trained.l0 <= trained.k + 1e-6).all() and trained.fvu.between(0, 1).all()
    assert (trained.ndcg10_kept > 0.5).all()
    assert trained.dead_fraction.between(0, 1).all()
    assert sae.loc["untrained", "fvu"] > trained.fvu.max()

    concepts = pd.read_csv(tables / "recsys_concepts.csv").set_index("units")
    assert set(concepts.index) == {"recsys-topk-k4", "recsys-topk-k8", "untrained", "neurons"}
    assert concepts.mean_confidence.between(0, 1).all() and concepts["share_ge_0.8"].between(0, 1).all()
    d = pd.read_csv(
        tmp_path / "results" / "recsys" / "dictionary" / "recsys-topk-k8" / "latent_dictionary.csv"
    )
    assert {"latent", "concept", "confidence", "recall", "precision", "frequency"} <= set(d.columns)

    ablation = pd.read_csv(tables / "recsys_ablation.csv")
    assert {"role", "scale", "delta_share", "delta_ndcg10", "delta_rank"} <= set(ablation.columns)
    for fig in ("recsys_confidence_hist", "recsys_ablation"):
        assert (tmp_path / "results" / "figures" / f"{fig}.png").stat().st_size > 0
