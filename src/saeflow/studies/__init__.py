"""The studies: one folder each, listed once here (order matters: a study sees the SAEs of those before it).

Each study package exposes ``STUDY`` (saeflow.study.Study) and ships its config section's JSON Schema as
``schema.yaml`` beside its code; its rules are ``workflow/rules/studies/<name>.smk``. A study runs when its
config section is present and not null. docs/adding-a-study.md has the recipe. A new study: import its STUDY
below (imports stay sorted) and add it to STUDIES (after the studies whose SAEs it reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from saeflow.reference import Reference
from saeflow.studies.architectures import STUDY as ARCHITECTURES
from saeflow.studies.bias_in_bios import STUDY as BIAS_IN_BIOS
from saeflow.studies.boosting import STUDY as BOOSTING
from saeflow.studies.convergence import STUDY as CONVERGENCE
from saeflow.studies.interpret import STUDY as INTERPRET
from saeflow.studies.maira2 import STUDY as MAIRA2
from saeflow.studies.protein import STUDY as PROTEIN
from saeflow.studies.recsys import STUDY as RECSYS
from saeflow.studies.ssae import STUDY as SSAE
from saeflow.study import Study

STUDIES: tuple[Study, ...] = (
    SSAE,
    ARCHITECTURES,
    BOOSTING,
    BIAS_IN_BIOS,
    MAIRA2,
    INTERPRET,
    PROTEIN,
    RECSYS,
    CONVERGENCE,
)


def active_studies(config: Mapping[str, Any]) -> list[Study]:
    return [s for s in STUDIES if s.active(config)]


def study_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of study `name`'s config section (its folder's schema.yaml)."""
    return yaml.safe_load((Path(__file__).parent / name / "schema.yaml").read_text())


def sae_column_files(config: Mapping[str, Any], saes: Mapping[str, Any]) -> dict[str, list[str]]:
    """{SAE: the per-SAE column files every active study publishes for it} (Study.sae_columns)."""
    out: dict[str, list[str]] = {}
    for study in active_studies(config):
        for sae, path in study.sae_columns(config, saes).items():
            out.setdefault(sae, []).append(path)
    return out


def all_references() -> tuple[Reference, ...]:
    return tuple(ref for study in STUDIES for ref in study.references)
