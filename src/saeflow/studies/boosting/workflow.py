"""The boosting study's workflow helpers: paths and inputs of workflow/rules/studies/boosting.smk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.boosting.specs import (
    STACKED,
    boosting_base,
    boosting_eval_sets,
    boosting_general,
    boosting_subdomains,
    finetune_name,
    residual_name,
)


class BoostingWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths, self.saes = config, paths, saes
        self.dir = f"{paths.results}/boosting"
        self.subdomains = boosting_subdomains(config)
        self.base = boosting_base(config, saes) if self.subdomains else None
        self.residuals = [residual_name(s) for s in self.subdomains]
        self.eval_sets = boosting_eval_sets(config)

    def base_layer(self) -> int:
        return int(self.saes[self.base]["layer"])

    def stacked_eval_json(self, eval_set: str) -> str:
        return f"{self.dir}/eval/{STACKED}/{eval_set}.json"

    def entries(self) -> dict[str, Any]:
        """The table's SAEs (base, residual and finetune per subdomain, stacked) and their evaluation
        JSONs."""
        general = boosting_general(self.config)
        evals = {self.base: {es: self.paths.eval_json(self.base, es) for es in self.eval_sets}}
        for sub in self.subdomains:
            for name in (residual_name(sub), finetune_name(sub)):
                evals[name] = {es: self.paths.eval_json(name, es) for es in dict.fromkeys([sub, general])}
        evals[STACKED] = {es: self.stacked_eval_json(es) for es in self.eval_sets}
        return {
            "base": self.base,
            "general": general,
            "residuals": {s: residual_name(s) for s in self.subdomains},
            "finetunes": {s: finetune_name(s) for s in self.subdomains},
            "stacked": STACKED,
            "evals": evals,
        }

    def inputs(self, wildcards) -> list[str]:
        return sorted({p for paths in self.entries()["evals"].values() for p in paths.values()})
