"""The protein study's tables from hand-made job outputs (no model, no Snakemake)."""

import pandas as pd
import pytest

from saeflow.studies.protein.report import concepts_table, fidelity_table, steering_table


def summary(unit, kind, rec):
    return {
        "unit": unit,
        "kind": kind,
        "n_units": 8,
        "l0": 2.0,
        "fvu": 0.2,
        "ce_clean": 2.0,
        "ce_sae": 2.1,
        "ce_zero": 3.0,
        "ce_mean": 2.5,
        "recovered_zero": rec,
        "recovered_mean": 0.8,
        "n_scored": 100,
        "latents_f1_gt_0.5": 3,
    }


def test_fidelity_and_concepts_tables():
    sums = [summary("prot-topk8", "sae", 0.9), summary("prot-neurons", "neurons", 1.0)]
    fid = fidelity_table(sums, {"prot-topk8": {"architecture": "topk", "k": 8, "d_sae": 8}})
    assert fid.recovered_zero_pct.tolist() == pytest.approx([90.0, 100.0])
    assert fid.d_sae.tolist() == [8, 8] and fid.architecture.iloc[0] == "topk"
    best = {
        u: pd.DataFrame({"concept": ["helix", "strand"], "test_f1": f, "covered": [x > 0.5 for x in f]})
        for u, f in (("prot-topk8", [0.7, 0.6]), ("prot-neurons", [0.6, 0.2]))
    }
    conc = concepts_table(sums, best)
    assert conc.concepts_covered.tolist() == [2, 1]
    assert conc.f1_helix.tolist() == [0.7, 0.6] and conc.mean_best_f1.tolist() == pytest.approx([0.65, 0.4])


def test_steering_table_aggregates_seeds_and_counts_motif_trials():
    rows = []
    for seed in range(3):
        rows.append(
            {
                "sae": "none",
                "method": "strength 0",
                "n_latents": 0,
                "strength": 0.0,
                "seed": seed,
                "helix_fraction": 0.2,
                "motif_rate": 0.0,
                "log_likelihood": -2.8,
                "composition_kl": 0.01,
                "low_complexity": 0.0,
                "longest_homopolymer": 2,
                "pairwise_identity": 0.06,
            }
        )
        rows.append(
            {
                "sae": "prot-relu",
                "method": "SAE latents",
                "n_latents": 3,
                "strength": 2.0,
                "seed": seed,
                "helix_fraction": 0.4 + 0.1 * seed,
                "motif_rate": 0.25 if seed == 0 else 0.0,
                "log_likelihood": -2.5,
                "composition_kl": 0.2,
                "low_complexity": 0.1,
                "longest_homopolymer": 3,
                "pairwise_identity": 0.1,
            }
        )
    table = steering_table(pd.DataFrame(rows))
    assert table.method.tolist() == ["strength 0", "SAE latents"]
    steered = table.iloc[1]
    assert steered.helix_fraction == pytest.approx(0.5) and steered.trials == 3 and steered.motif_trials == 1
    assert steered.helix_fraction_sd == pytest.approx(0.0816496, rel=1e-4)
