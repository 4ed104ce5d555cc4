"""Where a run's files live: the one place that knows the layout of results/ and resources/.

The workflow's rule files and every study's workflow helpers build paths through a `RunPaths`, so a layout
change is made here once. Activations and baselines are keyed by model and layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saeflow.assets import asset_name, resolve_uri


@dataclass(frozen=True)
class RunPaths:
    results: str
    """The run's results directory (config results_dir)."""
    resources: str
    """Downloaded assets and prepared models (config resources_dir)."""
    model: str
    """The default subject model's name (config model.name)."""
    layer: int
    """The default model's SAE site (config model.layer)."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RunPaths:
        return cls(
            str(config["results_dir"]),
            str(config["resources_dir"]),
            str(config["model"]["name"]),
            int(config["model"]["layer"]),
        )

    # --- assets and models
    def asset_marker(self, name: str) -> str:
        return f"{self.resources}/assets/{name}/asset.json"

    def uri_inputs(self, uri: str) -> list[str]:
        """Files a rule must wait for before it can read `uri` (an asset, a local path, or nothing for a hub
        id)."""
        name = asset_name(uri)
        if name is not None:
            return [self.asset_marker(name)]
        return [uri] if Path(uri).exists() else []

    def resolve(self, uri: str) -> str:
        return resolve_uri(uri, self.resources)

    def model_dir(self, model: str | None = None) -> str:
        return f"{self.resources}/models/{model or self.model}"

    def model_marker(self, model: str | None = None) -> str:
        return f"{self.model_dir(model)}/prepared.json"

    # --- text and activations
    def texts(self, textset: str) -> str:
        return f"{self.results}/texts/{textset}.jsonl"

    def corpus_stats(self, corpus: str) -> str:
        return f"{self.results}/texts/{corpus}.stats.json"

    def acts_dir(self, textset: str, model: str | None = None, layer: int | None = None) -> str:
        layer = self.layer if layer is None else layer
        return f"{self.results}/activations/{model or self.model}/L{layer}/{textset}"

    def acts_manifest(self, textset: str, model: str | None = None, layer: int | None = None) -> str:
        return f"{self.acts_dir(textset, model, layer)}/manifest.json"

    # --- SAEs and their evaluations
    def sae_dir(self, sae: str) -> str:
        return f"{self.results}/sae/{sae}"

    def sae_cfg(self, sae: str) -> str:
        return f"{self.sae_dir(sae)}/cfg.json"

    def sae_metrics(self, sae: str) -> str:
        return f"{self.sae_dir(sae)}/metrics.json"

    def sae_weights(self, sae: str) -> str:
        return f"{self.sae_dir(sae)}/sae_weights.safetensors"

    def eval_json(self, sae: str, eval_set: str) -> str:
        return f"{self.results}/eval/{sae}/{eval_set}.json"

    def sae_evals(self, sae: str) -> str:
        """One SAE's evaluations on all its eval sets (its evaluation job's output; eval_json splits it)."""
        return f"{self.results}/eval/{sae}.json"

    def baseline_json(self, eval_set: str, model: str | None = None, layer: int | None = None) -> str:
        return (
            f"{self.results}/eval/_baseline/{model or self.model}_L{self.layer if layer is None else layer}/"
            f"{eval_set}.json"
        )

    def table(self, stem: str, ext: str = "csv") -> str:
        return f"{self.results}/tables/{stem}.{ext}"

    def figure(self, stem: str) -> str:
        return f"{self.results}/figures/{stem}.png"
