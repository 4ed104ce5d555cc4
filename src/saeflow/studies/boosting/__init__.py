"""Boosted SAEs: a residual SAE per domain on a frozen base SAE's error, summed at inference."""

from saeflow.studies.boosting.references import REFERENCES
from saeflow.studies.boosting.specs import (
    boosting_evaluations,
    boosting_specs,
    boosting_subdomains,
    boosting_train_budget,
)
from saeflow.study import Study


def _targets(config, saes) -> list[str]:
    if not boosting_subdomains(config):
        return []
    results = config["results_dir"]
    return [f"{results}/tables/boosting.csv", f"{results}/tables/boosting.md"]


STUDY = Study(
    name="boosting",
    saes=boosting_specs,
    extraction_budget=boosting_train_budget,
    targets=_targets,
    eval_sets=boosting_evaluations,
    references=REFERENCES,
)
