"""The recsys study's SAEs, corpus, targets and workflow paths (parse-time code, no torch)."""

from __future__ import annotations

import pytest

from saeflow.errors import ConfigError
from saeflow.paths import RunPaths
from saeflow.registry import sae_specs
from saeflow.studies import STUDIES
from saeflow.studies.recsys import STUDY
from saeflow.studies.recsys.references import REFERENCES
from saeflow.studies.recsys.workflow import RecsysWorkflow


def config(**recsys):
    section = {
        "data": {"name": "ml100k", "inter": "asset:recbole/x.inter", "item": "asset:recbole/x.item"},
        "model": {"d_model": 64, "n_layers": 2},
        "sae": {"ks": [4, 8, 16], "expansion": 16},
        **recsys,
    }
    return {
        "results_dir": "res",
        "resources_dir": "rsc",
        "seed": 3,
        "model": {"name": "lm", "layer": 5},
        "corpora": {"general": {}},
        "recsys": section,
    }


def test_registered_and_opt_in():
    assert STUDY in STUDIES and STUDY.name == "recsys"
    assert STUDY.saes({"results_dir": "r"}, {}) == {} and STUDY.targets({"results_dir": "r"}, {}) == []
    assert not STUDY.active({"recsys": None})


def test_saes_are_topk_auxk_on_the_scoring_state():
    specs = sae_specs(config())
    names = [n for n in specs if n.startswith("recsys-")]
    assert names == ["recsys-topk-k4", "recsys-topk-k8", "recsys-topk-k16"]
    for k, name in zip((4, 8, 16), names):
        s = specs[name]
        assert (s["architecture"], s["k"], s["d_sae"]) == ("topk", k, 1024)
        assert (s["model"], s["layer"], s["train_on"]) == ("sasrec-ml100k", 1, "ml100k.train")
        assert s["aux_k_coef"] > 0 and s["seed"] == 3
    assert STUDY.corpora(config()) == ["ml100k"]


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="reference_k"):
        sae_specs(config(sae={"ks": [4, 8], "reference_k": 16}))
    with pytest.raises(ConfigError, match="topk"):
        sae_specs(config(sae={"settings": {"architecture": "relu"}}))


def test_targets_and_paths():
    cfg = config()
    targets = STUDY.targets(cfg, {})
    for t in ("model", "sae", "concepts", "ablation"):
        assert f"res/tables/recsys_{t}.csv" in targets and f"res/tables/recsys_{t}.md" in targets
    assert (
        "res/figures/recsys_confidence_hist.png" in targets and "res/figures/recsys_ablation.png" in targets
    )
    w = RecsysWorkflow(cfg, sae_specs(cfg), RunPaths.from_config(cfg))
    assert w.acts_manifest() == "res/activations/sasrec-ml100k/L1/ml100k.train/manifest.json"
    assert w.data_inputs() == ["rsc/assets/recbole/asset.json"]
    assert w.data_params()["inter"].endswith("assets/recbole/x.inter")
    assert w.reference == "recsys-topk-k8" and w.unit_sets[-2:] == ["untrained", "neurons"]
    assert w.untrained() == {"d_sae": 1024, "k": 8, "seed": 3}
    assert w.model_dir.endswith("recsys/model/sasrec-ml100k")


def test_references_sit_beside_recsys_tables():
    assert all(r.matches("recsys_concepts") for r in REFERENCES)
    rows = dict(REFERENCES[0].rows)
    assert rows["mean confidence (SAE latents)"] == "0.593" and rows["mean confidence (baseline)"] == "0.407"
