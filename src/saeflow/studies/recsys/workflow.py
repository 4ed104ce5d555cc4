"""The recsys study's workflow helpers: paths and inputs of workflow/rules/studies/recsys.smk."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from saeflow.paths import RunPaths
from saeflow.studies.recsys.specs import (
    NEURONS,
    UNTRAINED,
    recsys_corpus,
    recsys_d_sae,
    recsys_ks,
    recsys_layer,
    recsys_model_name,
    recsys_reference_k,
    recsys_section,
    recsys_textset,
    recsys_unit_sets,
    sae_name,
)


class RecsysWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.paths = config, paths
        self.section = recsys_section(config)
        self.dir = f"{paths.results}/recsys"
        self.corpus = recsys_corpus(config)
        self.model_name = recsys_model_name(config)
        self.layer = recsys_layer(config)
        self.textset = recsys_textset(config)
        self.saes = [sae_name(k) for k in recsys_ks(config)]
        self.reference = sae_name(recsys_reference_k(config))
        self.unit_sets = recsys_unit_sets(config)

    # --- data and model
    def data_inputs(self) -> list[str]:
        data = self.section["data"]
        return list(dict.fromkeys(self.paths.uri_inputs(data["inter"]) + self.paths.uri_inputs(data["item"])))

    def data_params(self) -> dict[str, Any]:
        """The data section with the files resolved (a plain dict: a changed column or file reruns the
        study)."""
        data = dict(self.section["data"])
        data["inter"], data["item"] = self.paths.resolve(data["inter"]), self.paths.resolve(data["item"])
        return data

    @property
    def model_dir(self) -> str:
        return f"{self.dir}/model/{self.model_name}"

    def model_files(self) -> dict[str, str]:
        return {
            "weights": f"{self.model_dir}/sasrec.safetensors",
            "config": f"{self.model_dir}/sasrec.json",
            "training": f"{self.model_dir}/training.json",
        }

    def acts_manifest(self) -> str:
        return self.paths.acts_manifest(self.textset, self.model_name, self.layer)

    # --- SAEs and controls
    def sae_files(self, names: list[str] | None = None) -> list[str]:
        names = self.saes if names is None else names
        return [f for n in names for f in (self.paths.sae_cfg(n), self.paths.sae_weights(n))]

    def untrained(self) -> dict[str, int]:
        """Shape and seed of the untrained-SAE control (the reference SAE's)."""
        return {
            "d_sae": recsys_d_sae(self.config),
            "k": recsys_reference_k(self.config),
            "seed": int(self.config.get("seed", 0)),
        }

    # --- concept dictionaries
    def dictionary(self, units: str) -> str:
        return f"{self.dir}/dictionary/{units}/latent_dictionary.csv"

    def dictionaries(self) -> list[str]:
        return [self.dictionary(u) for u in self.unit_sets]

    def dictionary_inputs(self, wildcards) -> list[str]:
        return self.sae_files([wildcards.units]) if wildcards.units in self.saes else []

    def unit_kinds(self) -> dict[str, str]:
        return {**dict.fromkeys(self.saes, "sae"), UNTRAINED: "untrained SAE", NEURONS: "neurons"}

    def units_pattern(self) -> str:
        """Wildcard constraint of {units}: exactly the unit sets of this run."""
        return "|".join(re.escape(u) for u in self.unit_sets)

    # --- outputs
    def table(self, stem: str, ext: str = "csv") -> str:
        return self.paths.table(f"recsys_{stem}", ext)

    def figure(self, stem: str) -> str:
        return self.paths.figure(f"recsys_{stem}")

    def ablation_edits(self) -> str:
        return f"{self.dir}/ablation_edits.csv"
