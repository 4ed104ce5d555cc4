"""The MAIRA-2-style study's tables: per-finding best latents, the summary, its SAE spec."""

import numpy as np
import pandas as pd

from saeflow.studies.maira2.report import (
    auroc,
    findings_table,
    report_labels,
    selection_half,
    summary_table,
)
from saeflow.studies.maira2.specs import (
    KEPT_TEXTSET,
    SAE_NAME,
    TEXTSET,
    maira2_budget,
    maira2_corpora,
    maira2_specs,
)


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


def test_auroc_by_hand():
    # positives score 3 and 1, negatives 2 and 0: of the 4 pairs, 3 are ordered right
    assert auroc(np.array([3.0, 2.0, 1.0, 0.0]), np.array([True, False, True, False])) == 0.75
    assert auroc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5  # a tie counts one half


def test_held_out_auroc_scores_the_latent_chosen_on_the_other_half():
    labels = np.zeros((8, 1), dtype=bool)
    labels[[0, 1, 4, 5], 0] = True
    select = np.array([True] * 4 + [False] * 4)
    acts = np.zeros((8, 2))
    acts[:4, 0] = [5, 5, 0, 0]  # latent 0 separates the selection half perfectly ...
    acts[4:, 0] = [0, 1, 2, 3]  # ... and is inverted on the held-out half: AUROC 0
    acts[:4, 1] = [1, 0, 1, 0]  # latent 1: chance on the selection half
    acts[4:, 1] = [9, 9, 0, 0]
    df = findings_table(acts, labels, ["effusion"], min_positives=2, select=select)
    assert df.best_latent[0] == 0 and df.auroc_selection[0] == 1.0 and df.auroc[0] == 0.0
    assert df.n_pos[0] == 2 and df.n_neg[0] == 2
    half = selection_half([f"r{i}" for i in range(400)], seed=0)
    assert 150 < half.sum() < 250 and (half == selection_half([f"r{i}" for i in range(400)], seed=0)).all()


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
    assert spec["train_on"] == KEPT_TEXTSET and spec["eval_sets"] == ["general"]  # filtered rows only
    assert maira2_budget(config, TEXTSET) == 999 and maira2_corpora(config) == ["radlabels"]
    assert maira2_specs({"model": {"name": "m", "layer": 7}}) == {}
