"""The Bias-in-Bios study's workflow helpers: paths and inputs of workflow/rules/studies/bias_in_bios.smk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.bias_in_bios.specs import compressed_study_saes, study_saes, study_tag

SETS = ("ambiguous", "test", "oracle")


class BiasInBiosWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths = config, paths
        self.cfg = config["bias_in_bios"]
        self.tag = study_tag(
            config
        )  # "" by default; another tag runs a second study beside it, sharing the SAEs
        self.dir = f"{paths.results}/bias_in_bios{self.tag}"
        self.acts = f"{self.dir}/acts/{paths.model}_L{paths.layer}"
        self.saes = study_saes(config, saes)
        """[(label, registry name)]"""
        self.compressed = compressed_study_saes(config, self.saes)
        """[(label, registry name)] of the compressed SAEs ("GSAE comp. 1/8", "gsae")."""

    def data_inputs(self) -> list[str]:
        """Asset markers and local files the bios come from (bias_in_bios.data.path: one file or a list)."""
        path = self.cfg["data"]["path"]
        files: list[str] = []
        for uri in [path] if isinstance(path, str) else path:
            files.extend(f for f in self.paths.uri_inputs(uri) if f not in files)
        return files

    def params(self) -> dict[str, Any]:
        """Everything that decides the study's numbers (a change reruns the affected jobs)."""
        return {k: v for k, v in self.cfg.items() if k not in ("saes", "ssae", "compress")}

    def compress_params(self) -> dict[str, Any] | None:
        return self.cfg.get("compress")

    def set_jsonl(self, name: str) -> str:
        return f"{self.dir}/sets/{name}.jsonl"

    def pooled(self, name: str) -> str:
        return f"{self.acts}/{name}/pooled.safetensors"

    def latents(self, sae: str, name: str) -> str:
        return f"{self.dir}/latents/{sae}/{name}.safetensors"

    def label(self, sae: str) -> str:
        return {name: label for label, name in self.saes}[sae]

    def compressed_label(self, sae: str) -> str:
        return {name: label for label, name in self.compressed}[sae]

    def compressed_dir(self, sae: str) -> str:
        """The compressed SAE (cfg.json, sae_weights.safetensors) and its kept latents (kept.json)."""
        return f"{self.dir}/compressed/{sae}"

    def compressed_file(self, sae: str, leaf: str) -> str:
        return f"{self.compressed_dir(sae)}/{leaf}"

    def compressed_latents(self, sae: str, name: str) -> str:
        return f"{self.compressed_dir(sae)}/latents/{name}.safetensors"

    def shift_jsons(self) -> list[str]:
        """Every SHIFT result the tables read: each compared SAE's, then each compressed SAE's."""
        return [f"{self.dir}/shift/{name}.json" for _, name in self.saes] + [
            f"{self.compressed_dir(name)}/shift.json" for _, name in self.compressed
        ]

    def shift_inputs(self, w) -> dict[str, str]:
        inputs = {"baseline": f"{self.dir}/baseline.json", "weights": self.paths.sae_weights(w.sae)}
        for name in SETS:
            inputs[name] = self.set_jsonl(name)
            inputs[f"{name}_x"] = self.pooled(name)
            inputs[f"{name}_f"] = self.latents(w.sae, name)
        return inputs

    def compressed_shift_inputs(self, w) -> dict[str, str]:
        inputs = self.shift_inputs(w)
        inputs["weights"] = f"{self.compressed_dir(w.sae)}/sae/sae_weights.safetensors"
        inputs.update({f"{name}_f": self.compressed_latents(w.sae, name) for name in SETS})
        return inputs
