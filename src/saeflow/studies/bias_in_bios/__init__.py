"""Bias in Bios: SHIFT and SCR with GSAE, SSAE and OrtSAE latents (Marks et al.; Muhamed et al. 2024)."""

from saeflow.studies.bias_in_bios.references import REFERENCES
from saeflow.studies.bias_in_bios.specs import (
    bias_ssae_specs,
    selected_corpora,
    selected_textset_budget,
    study_tag,
)
from saeflow.study import Study


def _targets(config, saes) -> list[str]:
    tag = study_tag(config)
    tables = f"{config['results_dir']}/tables"
    return [f"{tables}/bias_in_bios{tag}.csv", f"{tables}/bias_in_bios{tag}.md", f"{tables}/scr{tag}.csv"]


STUDY = Study(
    name="bias_in_bios",
    saes=bias_ssae_specs,
    extraction_budget=selected_textset_budget,
    corpora=selected_corpora,
    targets=_targets,
    references=REFERENCES,
)
