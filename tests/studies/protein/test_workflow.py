"""The protein study in the DAG: specs and targets (parse-time, no torch) and a tiny end-to-end run."""

from pathlib import Path

import pandas as pd
import pytest

from saeflow.config import load_config_files
from saeflow.errors import ConfigError
from saeflow.registry import sae_specs
from saeflow.studies.protein.specs import (
    NEURONS,
    RANDOM,
    analysed_units,
    protein_budget,
    protein_specs,
    protein_targets,
    random_like,
    steered_saes,
)

ROOT = Path(__file__).resolve().parents[3]


def test_specs_train_on_the_study_corpus_with_the_study_model():
    config = load_config_files(ROOT)
    specs = sae_specs(config)
    prot = {n: s for n, s in specs.items() if n.startswith("prot-")}
    assert set(prot) == {"prot-topk8", "prot-topk16", "prot-relu"}
    for spec in prot.values():
        assert spec["model"] == "unirep64" and spec["layer"] == 3 and spec["train_on"] == "gor4.train"
        assert spec["eval_sets"] == []
    assert prot["prot-relu"]["architecture"] == "relu" and prot["prot-topk16"]["k"] == 16
    assert analysed_units(config) == ["prot-topk8", "prot-topk16", "prot-relu", NEURONS, RANDOM]
    assert random_like(config) == "prot-relu" and steered_saes(config) == list(prot)
    assert protein_budget(config, "gor4.train") == 200000 and protein_budget(config, "general.train") is None


def test_targets_and_switching_off():
    config = load_config_files(ROOT, "config/test.yaml")
    targets = protein_targets(config)
    assert f"{config['results_dir']}/tables/protein_concepts.md" in targets
    assert f"{config['results_dir']}/figures/protein_steering.png" in targets
    off = {
        **config,
        "protein": {**config["protein"], "steering": {**config["protein"]["steering"], "saes": []}},
    }
    assert not any("steering" in t for t in protein_targets(off))
    assert (
        protein_specs({**config, "protein": None}, {}) == {}
        and protein_targets({**config, "protein": None}) == []
    )


def test_bad_settings_are_config_errors():
    config = load_config_files(ROOT, "config/test.yaml")
    bad = {**config, "protein": {**config["protein"], "steering": {"saes": ["prot-nope"]}}}
    with pytest.raises(ConfigError, match="prot-nope"):
        steered_saes(bad)
    bad = {**config, "protein": {**config["protein"], "saes": {"topk_k": [], "relu": False}}}
    with pytest.raises(ConfigError, match="no SAE"):
        protein_specs(bad, {})


@pytest.mark.workflow
def test_tiny_protein_run(tiny_run):
    """The protein targets of the session's one real run of config/test.yaml (tests/conftest.py): UniRep-64
    on gor4 chains, fetched from the package index."""
    tmp_path = tiny_run
    targets = protein_targets({**load_config_files(ROOT, "config/test.yaml"), "results_dir": "results"})
    for target in targets:
        assert (tiny_run / target).is_file(), target
    tables = tmp_path / "results" / "tables"
    fid = pd.read_csv(tables / "protein_fidelity.csv")
    assert set(fid.sae) == {"prot-topk8", "prot-relu", NEURONS, RANDOM}
    trained = fid[fid.kind == "sae"]
    assert trained.recovered_zero_pct.between(0, 100).all() and (trained.fvu < 1).all()
    assert (fid.loc[fid.kind == "sae", "l0"] > 0).all()
    assert fid.set_index("sae").loc["prot-topk8", "l0"] <= 8 + 1e-6
    conc = pd.read_csv(tables / "protein_concepts.csv")
    assert NEURONS in set(conc.sae) and RANDOM in set(conc.sae)
    assert {"concepts_covered", "latents_f1_gt_0.5", "f1_helix", "f1_zinc_finger_c2h2"} <= set(conc.columns)
    assert conc.filter(regex="^f1_").stack().between(0, 1).all()
    steer = pd.read_csv(tables / "protein_steering.csv")
    assert {"strength 0", "SAE latents", "random latents", "difference of means"} == set(steer.method)
    assert {"helix_fraction", "log_likelihood", "composition_kl", "low_complexity", "trials"} <= set(
        steer.columns
    )
    assert steer.helix_fraction.between(0, 1).all()
    units = tmp_path / "results" / "protein" / "unirep64" / "L3" / "units"
    latents = pd.read_csv(units / "prot-topk8" / "concepts.csv")
    assert {"latent", "concept", "threshold", "test_f1", "q_value", "frequency", "top_sequences"} <= set(
        latents
    )
    for fig in ("protein_fidelity_l0", "protein_concepts_f1", "protein_steering"):
        assert (tmp_path / "results" / "figures" / f"{fig}.png").stat().st_size > 0
