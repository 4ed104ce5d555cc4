"""SAE architectures at matched L0 (TopK, BatchTopK, JumpReLU, Matryoshka, OrtSAE): fidelity, decoder
geometry, absorption."""

from saeflow.studies.architectures.references import REFERENCES
from saeflow.studies.architectures.specs import (
    architecture_evaluations,
    architecture_saes,
    architecture_specs,
)
from saeflow.study import Study


def _targets(config, saes) -> list[str]:
    if not architecture_saes(config):
        return []
    results = config["results_dir"]
    return [
        f"{results}/tables/architectures.csv",
        f"{results}/tables/architectures.md",
        f"{results}/figures/decoder_cos_hist.png",
    ]


STUDY = Study(
    name="architectures",
    saes=architecture_specs,
    targets=_targets,
    eval_sets=architecture_evaluations,
    references=REFERENCES,
)
