"""Latent interpretation of the run's SAEs: top activations, token-pattern (or LLM) explanations scored by
detection and embedding against a shuffled-explanation control, feature dashboards, and steering with
controls."""

from saeflow.studies.interpret.references import REFERENCES
from saeflow.studies.interpret.specs import (
    interpret_budget,
    interpret_columns,
    interpret_corpora,
    interpret_saes,
    steering_sae,
)
from saeflow.study import Study


def _targets(config, saes) -> list[str]:
    names = interpret_saes(config, saes)
    if not names:
        return []
    results = config["results_dir"]
    tables = f"{results}/tables"
    out = [
        f"{tables}/autointerp.csv",
        f"{tables}/autointerp_summary.csv",
        f"{tables}/autointerp_summary.md",
        f"{results}/interpret/index.html",
    ]
    if steering_sae(config, saes) is not None:
        out += [
            f"{tables}/steering.csv",
            f"{tables}/steering.md",
            f"{results}/figures/steering_dose_response.png",
        ]
    return out


STUDY = Study(
    name="interpret",
    extraction_budget=interpret_budget,
    corpora=interpret_corpora,
    targets=_targets,
    sae_columns=interpret_columns,
    references=REFERENCES,
)
