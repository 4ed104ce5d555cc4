"""The architecture and boosting studies' SAEs in the registry (saeflow.studies.architectures / .boosting)."""

from pathlib import Path

import pytest
import yaml

from saeflow.config import load_config_files, validate_config
from saeflow.errors import ConfigError
from saeflow.registry import sae_specs
from saeflow.studies.architectures.specs import architecture_saes, architecture_specs
from saeflow.studies.boosting.specs import boosting_specs as _boosting_specs
from saeflow.studies.boosting.specs import boosting_train_budget

ROOT = Path(__file__).resolve().parents[3]
GSAE = {"architecture": "topk", "train_on": "general.train", "d_sae": 64, "k": 8, "lr": 0.001, "epochs": 2}


def _config(**sections):
    config = {
        "results_dir": "out",
        "corpora": {"general": {}, "medical": {}, "social": {}},
        "saes": {"gsae": dict(GSAE)},
        "architectures": {"reference": "gsae", "names": ["batchtopk", "jumprelu", "matryoshka", "ortsae"]},
        "boosting": {
            "base": "arch-batchtopk",
            "subdomains": ["medical", "social"],
            "residual": {"d_sae": 16, "k": 2},
            "finetune": {"lr": 0.0005, "epochs": 1},
        },
    }
    config.update(sections)
    return config


def boosting_specs(config):
    """The boosting study sees the SAEs defined before it (under saes: and the architecture study's)."""
    return _boosting_specs(config, {**(config.get("saes") or {}), **architecture_specs(config)})


def _merged(*files):
    """config/config.yaml with --configfile overlays (nested dicts merged, like Snakemake), validated."""
    return load_config_files(ROOT, *files)


def test_architecture_specs_copy_the_reference_at_matched_k():
    specs = architecture_specs(_config())
    assert sorted(specs) == ["arch-batchtopk", "arch-jumprelu", "arch-matryoshka", "arch-ortsae"]
    for name, spec in specs.items():
        assert spec["architecture"] == name.removeprefix("arch-")
        assert {k: spec[k] for k in ("train_on", "d_sae", "k", "lr", "epochs")} == {
            k: GSAE[k] for k in ("train_on", "d_sae", "k", "lr", "epochs")
        }
    assert specs["arch-jumprelu"]["extra"] == {"target_l0": 8}  # JumpReLU: L0 matched through its target
    assert architecture_saes(_config()) == {
        "topk": "gsae",
        "batchtopk": "arch-batchtopk",
        "jumprelu": "arch-jumprelu",
        "matryoshka": "arch-matryoshka",
        "ortsae": "arch-ortsae",
    }


def test_architecture_settings_merge_and_reference_architecture_is_not_retrained():
    cfg = _config()
    cfg["saes"]["gsae"]["architecture"] = "batchtopk"
    cfg["architectures"]["settings"] = {
        "ortsae": {"extra": {"ortho_gamma": 0.5}, "lr": 0.002},
        "jumprelu": {"extra": {"target_l0": 4}},
    }
    cfg["architectures"]["eval_sets"] = ["general", "medical"]
    specs = architecture_specs(cfg)
    assert "arch-batchtopk" not in specs  # the reference is the batchtopk row
    assert architecture_saes(cfg)["batchtopk"] == "gsae"
    assert specs["arch-ortsae"]["extra"] == {"ortho_gamma": 0.5} and specs["arch-ortsae"]["lr"] == 0.002
    assert specs["arch-jumprelu"]["extra"] == {"target_l0": 4}
    assert all(s["eval_sets"] == ["general", "medical"] for s in specs.values())


def test_disabled_studies_generate_nothing():
    cfg = _config()
    cfg["architectures"] = cfg["boosting"] = None
    assert architecture_specs(cfg) == {} and boosting_specs(cfg) == {} and architecture_saes(cfg) == {}
    assert architecture_specs({}) == {} and boosting_specs({}) == {}


def test_boosting_specs_residual_on_the_base_directory_and_finetune_baseline():
    specs = boosting_specs(_config())
    assert sorted(specs) == ["boost-ft-medical", "boost-ft-social", "boost-medical", "boost-social"]
    res = specs["boost-medical"]
    assert res["architecture"] == "residual_batchtopk" and (res["d_sae"], res["k"]) == (16, 2)
    assert res["train_on"] == "medical.train"
    assert res["extra"] == {"base": "out/sae/arch-batchtopk"}  # results_dir/sae/<base>
    assert res["eval_sets"] == ["medical", "general"]
    ft = specs["boost-ft-social"]
    assert ft["init_from"] == "arch-batchtopk" and ft["train_on"] == "social.train"
    assert ft["architecture"] == "batchtopk" and ft["d_sae"] == 64 and (ft["lr"], ft["epochs"]) == (0.0005, 1)
    # the whole registry resolves (init_from names a generated SAE)
    assert {"arch-batchtopk", "boost-medical", "boost-ft-medical"} <= set(sae_specs(_config()))


def test_boosting_errors():
    with pytest.raises(ConfigError, match="boosting.base: unknown SAE 'nope'"):
        boosting_specs(_config(boosting={"base": "nope", "subdomains": ["medical"]}))
    with pytest.raises(ConfigError, match="boosting.subdomains: physics"):
        boosting_specs(_config(boosting={"base": "gsae", "subdomains": ["physics"]}))
    with pytest.raises(ConfigError, match="residual architecture"):
        boosting_specs(
            _config(
                boosting={"base": "gsae", "subdomains": ["medical"], "residual": {"architecture": "topk"}}
            )
        )
    with pytest.raises(ConfigError, match="architectures.reference: 'missing'"):
        architecture_specs(_config(architectures={"reference": "missing", "names": ["ortsae"]}))
    with pytest.raises(ConfigError, match="architectures.settings: relu not in"):
        architecture_specs(_config(architectures={"names": ["ortsae"], "settings": {"relu": {}}}))


def test_boosting_train_budget():
    cfg = _config()
    cfg["boosting"]["train_tokens"] = 1000
    assert boosting_train_budget(cfg, "medical.train") == 1000
    assert boosting_train_budget(cfg, "general.train") is None
    assert boosting_train_budget(cfg, "medical.heldout") is None


def test_schema_rejects_a_bad_key():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["architectures"]["namez"] = ["ortsae"]
    with pytest.raises(ConfigError, match="key 'architectures'.*namez"):
        validate_config(config, ROOT / "config" / "schema.yaml")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["boosting"]["residual"]["architecture"] = "topk"
    with pytest.raises(ConfigError, match="boosting.residual.architecture"):
        validate_config(config, ROOT / "config" / "schema.yaml")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["architectures"]["analysis"]["absorption"]["n_main"] = 0
    with pytest.raises(ConfigError, match="n_main"):
        validate_config(config, ROOT / "config" / "schema.yaml")


@pytest.mark.parametrize(
    "files",
    [
        (),
        ("config/test.yaml",),
        *((str(p.relative_to(ROOT)),) for p in sorted((ROOT / "config" / "paper").glob("*.yaml"))),
    ],
    ids=lambda f: f[0] if f else "config.yaml",
)
def test_shipped_configs_generate_the_studies(files):
    config = _merged(*files)
    specs = sae_specs(config)
    arch = architecture_saes(config)
    assert set(arch.values()) <= set(specs)
    if not arch:
        assert config.get("architectures") is None
    for name in arch.values():
        k = specs[config["architectures"]["reference"]]["k"]
        spec = specs[name]
        assert spec["k"] == k and spec["extra"].get("target_l0", k) == k
    for sub in config["boosting"]["subdomains"] if config.get("boosting") else []:
        assert (
            specs[f"boost-{sub}"]["extra"]["base"]
            == f"{config['results_dir']}/sae/{config['boosting']['base']}"
        )


def test_common_overrides_retrain_the_reference_architecture():
    cfg = _config()
    cfg["architectures"]["common"] = {"epochs": 1}
    specs = architecture_specs(cfg)
    assert sorted(specs) == ["arch-batchtopk", "arch-jumprelu", "arch-matryoshka", "arch-ortsae", "arch-topk"]
    assert all(s["epochs"] == 1 and s["k"] == 8 for s in specs.values())
    assert architecture_saes(cfg)["topk"] == "arch-topk"
    assert next(iter(architecture_saes(cfg))) == "topk"


def test_common_overrides_equal_to_the_reference_do_not_retrain_it():
    cfg = _config()
    cfg["architectures"]["common"] = {"epochs": 2, "lr": 0.001}  # gsae's own values
    assert "arch-topk" not in architecture_specs(cfg) and architecture_saes(cfg)["topk"] == "gsae"


def test_relu_copy_steers_its_l0_to_k():
    cfg = _config(architectures={"names": ["relu"]})
    spec = architecture_specs(cfg)["arch-relu"]
    assert spec["architecture"] == "relu"
    assert spec["extra"] == {"target_l0": cfg["saes"]["gsae"]["k"]}
