"""The SAE spec defaults and config-time checks (saeflow.sae_spec)."""

import dataclasses
import re
from pathlib import Path

import pytest

from saeflow.errors import ConfigError
from saeflow.sae.base import ARCHITECTURES, SAEConfig
from saeflow.sae_spec import ARCHITECTURE_EXTRA, SAE_DEFAULTS, SPEC_EXCLUDED_FIELDS, USES_K, resolve_sae
from saeflow.train import TrainConfig

SAE_SRC = Path(__file__).resolve().parents[1] / "src" / "saeflow" / "sae"
CONFIG = {"seed": 3, "model": {"name": "m", "layer": 2}}


def test_defaults_are_the_dataclasses_defaults():
    for cls in (SAEConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if f.name in SPEC_EXCLUDED_FIELDS or f.name in ("architecture", "d_sae"):
                continue
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            assert SAE_DEFAULTS[f.name] == default, f.name


def test_every_learning_default_is_in_the_resolved_spec():
    spec = resolve_sae("s", {"train_on": "general.train"}, CONFIG)
    for key in ("decay_fraction", "grad_clip", "outlier_norm_ratio", "dead_tokens", "aux_k"):
        assert key in spec
    assert spec["seed"] == 3 and spec["model"] == "m" and spec["layer"] == 2


def _extra_keys_read(path: Path) -> set[str]:
    return set(re.findall(r'extra(?:\.get\(|\[)"([a-z_0-9]+)"', path.read_text()))


def test_extra_keys_match_what_the_architectures_read():
    assert set(ARCHITECTURE_EXTRA) == set(ARCHITECTURES)
    read = {f.stem: _extra_keys_read(f) for f in SAE_SRC.glob("*.py")}
    assert read["topk"] == ARCHITECTURE_EXTRA["topk"]
    assert read["batchtopk"] <= ARCHITECTURE_EXTRA["batchtopk"]
    assert read["jumprelu"] == ARCHITECTURE_EXTRA["jumprelu"]
    assert read["matryoshka"] | read["batchtopk"] == ARCHITECTURE_EXTRA["matryoshka"]
    assert read["ortsae"] | read["batchtopk"] == ARCHITECTURE_EXTRA["ortsae"]
    assert read["residual"] <= ARCHITECTURE_EXTRA["residual_topk"] & ARCHITECTURE_EXTRA["residual_batchtopk"]
    assert {a for a, cls in ARCHITECTURES.items() if cls.uses_k} == USES_K


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            {"architecture": "ortsae", "extra": {"ortho_gama": 0.1}},
            r"unknown key extra.ortho_gama for architecture ortsae",
        ),
        ({"architecture": "topkk"}, r"architecture must be one of"),
        ({"k": 5000, "d_sae": 64}, r"k must be between 1 and d_sae \(64\); got 5000"),
        ({"lr_typo": 1}, r"unknown key 'lr_typo'"),
    ],
)
def test_bad_specs_are_one_line_config_errors(spec, match):
    with pytest.raises(ConfigError, match=match) as err:
        resolve_sae("s", {"train_on": "general.train", **spec}, CONFIG)
    assert "\n" not in str(err.value)
