"""The protein study's workflow helpers: paths and inputs of workflow/rules/studies/protein.smk."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.protein.specs import (
    CORPUS,
    NEURONS,
    RANDOM,
    SPLITS,
    analysed_units,
    protein_active,
    protein_budget,
    protein_model,
    protein_section,
    random_like,
    steered_saes,
    trained_saes,
)


class ProteinWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths, self.saes = config, paths, saes
        self.active = protein_active(config)
        cfg = protein_section(config)
        self.model = protein_model(config)
        self.data = dict(cfg.get("data") or {})
        self.data.setdefault("source", "asset:gor4/gor4-1.0.1/gor4/data")
        self.dir = f"{paths.results}/protein/{self.model['name']}/L{self.model['layer']}"
        self.trained = trained_saes(config) if self.active else []
        self.units = analysed_units(config) if self.active else []
        self.steered = steered_saes(config) if self.active else []
        self.reference = random_like(config) if self.active and RANDOM in self.units else None
        self.concepts = dict(cfg.get("concepts") or {})
        self.fidelity = dict(cfg.get("fidelity") or {})
        self.steering = dict(cfg.get("steering") or {})

    # --- patterns and regexes for wildcards
    @property
    def unit_regex(self) -> str:
        return "|".join(re.escape(u) for u in self.units) or "^$"

    @property
    def steer_regex(self) -> str:
        return "|".join(re.escape(u) for u in self.steered) or "^$"

    # --- paths
    def split_records(self, split: str) -> str:
        """All chains of a split (the prepare rule's output; not under texts/, which the core corpus rule
        owns)."""
        return f"{self.paths.results}/protein/chains/{CORPUS}.{split}.jsonl"

    def stored_records(self, split: str) -> str:
        """The chains stored by extraction (cut to the budget), row-aligned with the activations."""
        return f"{self.dir}/records/{split}.jsonl"

    def acts_manifest(self, split: str) -> str:
        return self.paths.acts_manifest(f"{CORPUS}.{split}", self.model["name"], self.model["layer"])

    def unit_file(self, unit: str, name: str) -> str:
        return f"{self.dir}/units/{unit}/{name}"

    def oracle(self) -> str:
        return f"{self.dir}/oracle.json"

    def controls_csv(self) -> str:
        return f"{self.dir}/steering_controls.csv"

    # --- parameters
    def model_source(self) -> str:
        return self.paths.resolve(self.model["source"])

    def model_inputs(self) -> list[str]:
        return self.paths.uri_inputs(self.model["source"])

    def data_source(self) -> str:
        return self.paths.resolve(self.data["source"])

    def data_inputs(self) -> list[str]:
        return self.paths.uri_inputs(self.data["source"])

    def budget(self, split: str) -> int:
        return int(protein_budget(self.config, f"{CORPUS}.{split}"))

    def extraction(self, split: str) -> dict[str, Any]:
        ex = self.config.get("extraction") or {}
        return {
            "max_tokens": self.budget(split),
            "batch_size": self.model["batch_size"],
            "shard_rows": int(ex.get("shard_rows", 32768)),
            "dtype": "float32",
        }

    def unit_kind(self, unit: str) -> str:
        return "neurons" if unit == NEURONS else "random" if unit == RANDOM else "sae"

    def unit_sae(self, unit: str) -> str | None:
        """The SAE folder a unit set reads: its own, the random control's reference, or none (neurons)."""
        if unit == NEURONS:
            return None
        return self.paths.sae_dir(self.reference if unit == RANDOM else unit)

    # --- input functions
    def split_inputs(self) -> dict[str, str]:
        return {f"records_{s}": self.stored_records(s) for s in SPLITS} | {
            f"acts_{s}": self.acts_manifest(s) for s in SPLITS
        }

    def unit_inputs(self, wildcards) -> dict[str, Any]:
        inputs: dict[str, Any] = {**self.split_inputs(), "model": self.model_inputs()}
        sae = self.unit_sae(wildcards.unit)
        if sae is not None:
            inputs["sae_cfg"] = f"{sae}/cfg.json"
            inputs["sae_weights"] = f"{sae}/sae_weights.safetensors"
        return inputs

    def steer_inputs(self, wildcards) -> dict[str, Any]:
        return {
            **self.unit_inputs(wildcards),
            "arrays": self.unit_file(wildcards.unit, "arrays.npz"),
            "oracle": self.oracle(),
        }

    def controls_inputs(self, wildcards) -> dict[str, Any]:
        return {**self.split_inputs(), "model": self.model_inputs(), "oracle": self.oracle()}

    def table_inputs(self, wildcards) -> dict[str, list[str]]:
        return {
            "summaries": [self.unit_file(u, "summary.json") for u in self.units],
            "best": [self.unit_file(u, "best_concepts.csv") for u in self.units],
        }

    def steering_table_inputs(self, wildcards) -> dict[str, list[str]]:
        return {"steering": [self.unit_file(u, "steering.csv") for u in self.steered] + [self.controls_csv()]}

    def entries(self) -> dict[str, Any]:
        """What the table job needs beside its files: the units in order, their kinds and specs."""
        specs = {u: self._spec(u) for u in self.units}
        return {
            "units": self.units,
            "kinds": {u: self.unit_kind(u) for u in self.units},
            "specs": specs,
            "steered": self.steered,
            "concept": self.steering.get("concept", "helix"),
            "motif": self.steering.get("motif", "zinc_finger_c2h2"),
            "model": self.model["name"],
            "layer": self.model["layer"],
        }

    def _spec(self, unit: str) -> dict[str, Any]:
        if unit == NEURONS:
            return {"architecture": "neurons", "k": None, "d_sae": None}
        name = self.reference if unit == RANDOM else unit
        spec = self.saes[name]
        return {
            "architecture": ("random " if unit == RANDOM else "") + spec["architecture"],
            "k": spec["k"] if spec["architecture"] == "topk" else None,
            "d_sae": spec["d_sae"],
            "l1_coefficient": spec["l1_coefficient"] if spec["architecture"] == "relu" else None,
        }
