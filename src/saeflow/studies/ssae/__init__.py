"""Specialised SAEs (Muhamed et al. 2024): data selection per subdomain, the GSAE finetuned with ERM /
TERM."""

from saeflow.studies.ssae.paths import ssae_targets
from saeflow.studies.ssae.references import REFERENCES
from saeflow.studies.ssae.specs import extraction_budget, ssae_evaluations, ssae_specs
from saeflow.study import Study

STUDY = Study(
    name="ssae",
    saes=ssae_specs,
    extraction_budget=extraction_budget,
    targets=ssae_targets,
    eval_sets=ssae_evaluations,
    references=REFERENCES,
)
