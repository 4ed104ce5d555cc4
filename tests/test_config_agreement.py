"""One source of defaults: where a config section is read into a dataclass, the section's JSON Schema and the
dataclass agree (every schema key is a field the code reads; a default stated in both is the same value). The
dataclass holds the defaults; a schema restating one must not contradict it."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from saeflow.absorption import AbsorptionSettings
from saeflow.absorption_icl import IclAbsorptionSettings
from saeflow.interpret.explainers import TokenPatternConfig
from saeflow.latents import LatentsConfig
from saeflow.models.sasrec import SASRecConfig
from saeflow.sae_spec import SAE_DEFAULTS, SPEC_EXCLUDED_FIELDS
from saeflow.studies.bias_in_bios.compress import CompressConfig
from saeflow.studies.bias_in_bios.data import MaskSpec

ROOT = Path(__file__).resolve().parents[1]


def _study_schema(study):
    return yaml.safe_load((ROOT / "src" / "saeflow" / "studies" / study / "schema.yaml").read_text())


def _section(schema, path):
    for key in path:
        schema = schema["properties"][key]
    return schema["properties"]


def _default(field):
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return dataclasses.MISSING
    return list(value) if isinstance(value, tuple) else value


SECTIONS = [
    # dataclass, study schema, path inside it, fields that are not config keys (and why)
    (LatentsConfig, "interpret", ["latents"], {"seed"}),  # interpret.seed
    (TokenPatternConfig, "interpret", ["token"], set()),
    (CompressConfig, "bias_in_bios", ["compress"], set()),
    (MaskSpec, "bias_in_bios", ["mask"], set()),
    (AbsorptionSettings, "architectures", ["analysis", "absorption"], set()),
    (IclAbsorptionSettings, "architectures", ["analysis", "absorption_icl"], set()),
    (SASRecConfig, "recsys", ["model"], {"n_items"}),  # from the data
]


@pytest.mark.parametrize("cls, study, path, code_only", SECTIONS, ids=[c[0].__name__ for c in SECTIONS])
def test_study_sections_and_their_dataclasses_agree(cls, study, path, code_only):
    props = _section(_study_schema(study), path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(props) <= set(fields), f"schema keys the code ignores: {sorted(set(props) - set(fields))}"
    assert set(fields) - set(props) == code_only
    for name in props:
        if "default" in props[name]:
            assert props[name]["default"] == _default(fields[name]), f"{study}.{'.'.join(path)}.{name}"


def test_sae_spec_schema_and_defaults_agree():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    props = schema["properties"]["saes"]["additionalProperties"]["properties"]
    for name, value in SAE_DEFAULTS.items():
        assert name in props, name
        if "default" in props[name]:
            assert props[name]["default"] == value, name
    # the trainer's settings that change nothing learned are config keys too (d_in comes from the activations,
    # log_every is the trainer's own)
    assert set(SPEC_EXCLUDED_FIELDS) - {"d_in", "log_every"} <= set(props)
