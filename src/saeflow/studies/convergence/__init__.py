"""Convergence: training curves of the SAEs trained with monitor_on and a finetune control per SAE."""

from saeflow.studies.convergence.specs import convergence_specs
from saeflow.study import Study


def _targets(config, saes) -> list[str]:
    results = config["results_dir"]
    return [
        f"{results}/tables/convergence.csv",
        f"{results}/tables/convergence.md",
        f"{results}/figures/training_curves.png",
    ]


STUDY = Study(name="convergence", saes=convergence_specs, targets=_targets)
