"""The MAIRA-2-style study's tables: per-finding best latents, the summary, its SAE spec."""

import numpy as np
import pandas as pd

from saeflow.studies.maira2.report import findings_table, report_labels, summary_table
from saeflow.studies.maira2.specs import SAE_NAME, TEXTSET, maira2_budget, maira2_corpora, maira2_specs


def test_findings_table_picks_the_separating_latent():
    rng = np.random.default_rng(0)
    labels = np.zeros((40, 2), dtype=bool)
    labels[:10, 0] = True
    labels[:2, 1] = True  # too few positives: left out
    acts = rng.random((40, 3))
    acts[:10, 2] += 5
    df = findings_table(acts, labels, ["effusion", "rare"], min_positives=5, explanations={2: "x"})
    assert list(df.concept) == ["effusion"] and df.best_latent[0] == 2 and df.auroc[0] == 1.0
    assert df.explanation[0] == "x"


def test_summary_and_labels():
    scores = pd.DataFrame(
        {
            "latent": [0, 1, 0, 1],
            "scorer": ["detection"] * 2 + ["embedding"] * 2,
            "balanced_accuracy": [0.9, 0.6, np.nan, np.nan],
            "control_balanced_accuracy": [0.5] * 4,
            "auroc": [0.9, 0.7, 0.8, 0.6],
            "control_auroc": [0.5] * 4,
        }
    )
    filtering = pd.DataFrame({"reason": ["kept", "header"], "tokens": [80, 20], "share": [0.8, 0.2]})
    findings = pd.DataFrame({"concept": ["a", "b"], "best_latent": [3, 3], "auroc": [0.9, 0.85]})
    s = dict(
        summary_table(
            filtering=filtering, scores=scores, findings=findings, threshold=0.8, n_live=10, d_sae=20
        ).values
    )
    assert (
        s["tokens kept after filtering (share)"] == 0.8 and s["share of latents with detection >= 0.8"] == 0.5
    )
    assert s["same, shuffled control"] == 0.0 and s["embedding AUROC"] == 0.7
    assert s["distinct latents mapped to a finding (AUROC >= 0.8), share of live latents"] == 0.1

    class R:
        def __init__(self, i):
            self.id = i

    class D:
        reports = (R("r1"), R("r2"))

        def label_matrix(self):
            return np.array([[True], [False]])

    assert report_labels(D(), ["r2", "r1"]).tolist() == [[False], [True]]


def test_specs():
    config = {"model": {"name": "m", "layer": 7}, "maira2": {"sae": {"d_sae": 64}, "tokens": 999}}
    spec = maira2_specs(config)[SAE_NAME]
    assert spec["architecture"] == "matryoshka" and spec["d_sae"] == 64 and spec["layer"] == 7
    assert spec["train_on"] == TEXTSET and spec["eval_sets"] == ["general"]
    assert maira2_budget(config, TEXTSET) == 999 and maira2_corpora(config) == ["radlabels"]
    assert maira2_specs({"model": {"name": "m", "layer": 7}}) == {}
