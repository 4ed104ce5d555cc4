"""The SSAE study's workflow helpers: its paths and the input functions of workflow/rules/studies/ssae.smk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError
from saeflow.paths import RunPaths
from saeflow.studies.ssae.specs import (
    CANDIDATES_PREFIX,
    CONCEPTS_SPLIT,
    SEEDS_SPLIT,
    report_rows,
    selection_textset,
    ssae_subdomains,
    tracin_settings,
)


class SSAEWorkflow:
    def __init__(self, config: Mapping[str, Any], saes: Mapping[str, Any], paths: RunPaths):
        self.config, self.saes, self.paths = config, saes, paths
        self.cfg = config["ssae"]
        self.subdomains = ssae_subdomains(config)
        self.general = self.cfg["general_corpus"]
        self.dir = f"{paths.results}/ssae"
        self.embedder = self.cfg["retrieval"]["embedder"]
        self.concepts_split = CONCEPTS_SPLIT

    def embedding_cache(self, corpus: str) -> str:
        """<prefix>.npy (embeddings), <prefix>.faiss (index), <prefix>.json (ids + stats) of one corpus."""
        return f"{self.paths.results}/retrieval/{self.embedder['name']}/{corpus}"

    def embedder_source(self, name: str) -> str:
        if name != self.embedder["name"]:
            raise ConfigError(
                f"embedder '{name}' is not configured (ssae.retrieval.embedder.name is "
                f"'{self.embedder['name']}')"
            )
        return self.paths.resolve(self.embedder["source"])

    def tracin_inputs(self, w) -> dict[str, Any]:
        """The TracIn re-ranking's inputs: the pool's texts (as select_texts), the base retrieval's candidates
        and their activations, the seeds' activations (at the TracIn SAE's model and layer) and that SAE."""
        sae = tracin_settings(self.config)["sae"]
        spec = self.saes[sae]
        candidates = f"{w.subdomain}.{CANDIDATES_PREFIX}{w.base}"
        return {
            "general": self.paths.texts(f"{self.general}.train"),
            "domain": self.paths.texts(f"{w.subdomain}.train"),
            "model": self.paths.model_marker(),
            "candidates": f"{self.dir}/selection/{candidates}.json",
            "candidate_acts": self.paths.acts_manifest(candidates, spec["model"], spec["layer"]),
            "seed_acts": self.paths.acts_manifest(
                f"{w.subdomain}.{SEEDS_SPLIT}", spec["model"], spec["layer"]
            ),
            "sae": f"{self.paths.sae_dir(sae)}/cfg.json",
            "sae_metrics": f"{self.paths.sae_dir(sae)}/metrics.json",
        }

    def selection_json(self, subdomain: str, method: str) -> str:
        return f"{self.dir}/selection/{selection_textset(subdomain, method)}.json"

    def concepts_json(self, sae: str, subdomain: str) -> str:
        return f"{self.dir}/concepts/{sae}/{subdomain}.json"

    def token_freq(self, corpus: str) -> str:
        return f"{self.dir}/token_freq/{self.paths.model}/{corpus}.npy"

    def report_entries(self) -> list[dict[str, Any]]:
        """One plain dict per table row (report_rows), with the paths of its JSON inputs."""
        rows = report_rows(self.config, self.saes)
        for v in rows:
            v["paths"] = {
                "domain_eval": self.paths.eval_json(v["name"], v["subdomain"]),
                "general_eval": self.paths.eval_json(v["name"], self.general),
                "concepts": self.concepts_json(v["name"], v["subdomain"]),
            }
            if v["selection"] != "gsae":
                v["paths"]["selection"] = self.selection_json(v["subdomain"], v["selection"])
        return rows

    def selection_jsons(self) -> dict[str, dict[str, str]]:
        """{subdomain: {method: selection JSON}} of the retrieval methods (`domain` is no retrieval)."""
        return {
            s: {m: self.selection_json(s, m) for m in self.cfg["selections"] if m != "domain"}
            for s in self.subdomains
        }

    def report_inputs(self, wildcards) -> list[str]:
        files = {p for entry in self.report_entries() for p in entry["paths"].values()}
        files |= {p for methods in self.selection_jsons().values() for p in methods.values()}
        return sorted(files)

    def select_inputs(self, w) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            "general": self.paths.texts(f"{self.general}.train"),
            "domain": self.paths.texts(f"{w.subdomain}.train"),
            "model": self.paths.model_marker(),
        }
        if w.method == "dense":
            for name, corpus in (("general", self.general), ("domain", w.subdomain)):
                for ext in ("npy", "faiss", "json"):
                    inputs[f"{name}_{ext}"] = f"{self.embedding_cache(corpus)}.{ext}"
            inputs["embedder"] = self.paths.uri_inputs(self.embedder["source"])
        return inputs
