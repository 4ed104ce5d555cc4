"""The architecture study's workflow helpers: paths and inputs of workflow/rules/studies/architectures.smk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.architectures.specs import ARCH_PREFIX, architecture_saes, l1_search_json


class ArchitecturesWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths, self.specs = config, paths, saes
        self.cfg = config["architectures"]
        self.dir = f"{paths.results}/architectures"
        self.saes = architecture_saes(config)
        """{architecture label: registry name}"""

    def eval_sets(self) -> list[str]:
        return self.cfg["eval_sets"] or self.config["evaluation"]["eval_sets"]

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

    def l1_searched(self) -> list[str]:
        """The study's ReLU copies, whose L1 coefficient is searched before training (rule l1_search)."""
        return [sae for sae in self.saes.values() if sae == f"{ARCH_PREFIX}relu"]

    def l1_search_json(self, sae: str) -> str:
        return l1_search_json(self.config, sae)

    def with_l1_search(self, train_inputs):
        """An input function: `train_inputs`' inputs plus the SAE's L1-coefficient search."""
        return lambda w: {**train_inputs(w), "l1_search": self.l1_search_json(w.sae)}

    def l1_search_settings(self) -> dict[str, Any]:
        return dict(self.cfg.get("l1_search") or {})

    def inputs(self, wildcards) -> dict[str, list[str]]:
        """Evaluation JSON of every SAE of the study on every eval set, and each SAE's analysis JSON."""
        return {
            "evals": [self.paths.eval_json(sae, es) for sae in self.saes.values() for es in self.eval_sets()],
            "analyses": [self.analysis_json(sae) for sae in self.saes.values()],
            "l1_searches": [self.l1_search_json(sae) for sae in self.l1_searched()],
        }

    def entries(self) -> dict[str, dict[str, Any]]:
        """{label: {sae, evals: {eval_set: path}, analysis: path}}: what the table script joins."""
        return {
            label: {
                "sae": sae,
                "evals": {es: self.paths.eval_json(sae, es) for es in self.eval_sets()},
                "analysis": self.analysis_json(sae),
                **({"l1_search": self.l1_search_json(sae)} if sae in self.l1_searched() else {}),
            }
            for label, sae in self.saes.items()
        }
