"""The architecture study's workflow helpers: paths and inputs of workflow/rules/studies/architectures.smk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.architectures.specs import architecture_saes


class ArchitecturesWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths = config, paths
        self.cfg = config["architectures"]
        self.dir = f"{paths.results}/architectures"
        self.saes = architecture_saes(config)
        """{architecture label: registry name}"""

    def eval_sets(self) -> list[str]:
        return self.cfg["eval_sets"] or self.config["evaluation"]["eval_sets"]

    def analysis_json(self, sae: str) -> str:
        return f"{self.dir}/analysis/{sae}.json"

    def inputs(self, wildcards) -> dict[str, list[str]]:
        """Evaluation JSON of every SAE of the study on every eval set, and each SAE's analysis JSON."""
        return {
            "evals": [self.paths.eval_json(sae, es) for sae in self.saes.values() for es in self.eval_sets()],
            "analyses": [self.analysis_json(sae) for sae in self.saes.values()],
        }

    def entries(self) -> dict[str, dict[str, Any]]:
        """{label: {sae, evals: {eval_set: path}, analysis: path}}: what the table script joins."""
        return {
            label: {
                "sae": sae,
                "evals": {es: self.paths.eval_json(sae, es) for es in self.eval_sets()},
                "analysis": self.analysis_json(sae),
            }
            for label, sae in self.saes.items()
        }
