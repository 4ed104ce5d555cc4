"""The architecture study's workflow helpers: paths and inputs of workflow/rules/studies/architectures.smk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.architectures.specs import architecture_eval_sets, architecture_saes


class ArchitecturesWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths, self.specs = config, paths, saes
        self.cfg = config["architectures"]
        self.dir = f"{paths.results}/architectures"
        self.saes = architecture_saes(config)
        """{architecture label: registry name}"""

    def eval_sets(self) -> list[str]:
        return architecture_eval_sets(self.config)

    def analysis_json(self, sae: str) -> str:
        return f"{self.dir}/analysis/{sae}.json"

    def letter_set(self, layer: int | str) -> str:
        """The SAEBench-protocol letter set (saeflow.absorption_icl.LetterSet) of the run's model at a
        layer."""
        return f"{self.dir}/letter_set/{self.paths.model}_L{layer}.safetensors"

    def sae_letter_set(self, sae: str) -> str:
        return self.letter_set(int(self.specs[sae]["layer"]))

    def absorption_icl_settings(self) -> dict[str, Any]:
        return dict(self.cfg["analysis"].get("absorption_icl") or {})

    def inputs(self, wildcards) -> dict[str, list[str]]:
        """Evaluation JSON of every SAE of the study on every eval set, and each SAE's analysis JSON."""
        return {
            "evals": [self.paths.eval_json(sae, es) for sae in self.saes.values() for es in self.eval_sets()],
            "analyses": [self.analysis_json(sae) for sae in self.saes.values()],
            "cfgs": [self.paths.sae_cfg(sae) for sae in self.saes.values()],
        }

    def entries(self) -> dict[str, dict[str, Any]]:
        """{label: {sae, evals: {eval_set: path}, analysis: path, cfg: path}}: what the table script joins."""
        return {
            label: {
                "sae": sae,
                "evals": {es: self.paths.eval_json(sae, es) for es in self.eval_sets()},
                "analysis": self.analysis_json(sae),
                "cfg": self.paths.sae_cfg(sae),
            }
            for label, sae in self.saes.items()
        }
