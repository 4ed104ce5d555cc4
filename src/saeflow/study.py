"""The plug-in shape of a study: what the workflow and the SAE registry need to know of it.

A study is one folder under ``saeflow/studies/`` exposing ``STUDY`` (a :class:`Study`), one rule file under
``workflow/rules/studies/``, its report captions and its tests, plus one line in ``saeflow.studies.STUDIES``.
It runs when its config section is present (opt-in), so adding a study changes no existing config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from saeflow.reference import Reference

Config = Mapping[str, Any]
Specs = Mapping[str, Mapping[str, Any]]


def _no_saes(config: Config, defined: Specs) -> dict[str, dict[str, Any]]:
    return {}


def _no_budget(config: Config, textset: str) -> int | None:
    return None


def _no_corpora(config: Config) -> list[str]:
    return []


def _no_targets(config: Config, saes: Specs) -> list[str]:
    return []


def _no_columns(config: Config, saes: Specs) -> dict[str, str]:
    return {}


def _no_eval_sets(config: Config, saes: Specs) -> dict[str, list[str]]:
    return {}


def core_extraction_budget(config: Config, textset: str) -> int:
    """The token budget the core gives a text set ("<corpus>.<split>") that no study claims:
    `extraction.heldout_tokens` for a held-out set, `extraction.train_tokens` for any other."""
    ex = config["extraction"]
    return int(ex["heldout_tokens"] if textset.split(".", 1)[1] == "heldout" else ex["train_tokens"])


@dataclass(frozen=True)
class Study:
    name: str
    """Folder name under saeflow/studies/, config section and rule file stem."""
    saes: Callable[[Config, Specs], dict[str, dict[str, Any]]] = _no_saes
    """config, the resolved SAEs defined so far (under ``saes:``, sweeps, earlier studies) -> the SAEs this
    study adds (unresolved specs by registry name)."""
    extraction_budget: Callable[[Config, str], int | None] = _no_budget
    """config, text set -> the token budget this study wants extracted for it, or None when not its set."""
    corpora: Callable[[Config], list[str]] = _no_corpora
    """config -> names of the text corpora this study writes itself (e.g. retrieved selections), which its
    SAEs may train on like configured corpora."""
    targets: Callable[[Config, Specs], list[str]] = _no_targets
    """config, all resolved SAEs -> the final outputs (tables, figures) `rule all` asks for."""
    sae_columns: Callable[[Config, Specs], dict[str, str]] = _no_columns
    """config, all resolved SAEs -> {SAE: a JSON object of per-SAE columns this study writes}; the tables of
    other studies with that SAE in a row show them (e.g. autointerp scores in the SSAE and architecture
    tables). Column names carry the study's prefix."""
    eval_sets: Callable[[Config, Specs], dict[str, list[str]]] = _no_eval_sets
    """config, all resolved SAEs -> {SAE: eval sets this study reads its evaluation on} beyond those the SAE's
    spec names (e.g. a reference SAE defined elsewhere, on the study's sets): the SAE's evaluation job covers
    them (saeflow.registry.evaluated_sets)."""
    references: tuple[Reference, ...] = field(default=())
    """The papers' numbers printed beside this study's tables in the summary."""

    @property
    def rule_file(self) -> str:
        """Relative to the workflow's root."""
        return f"workflow/rules/studies/{self.name}.smk"

    def active(self, config: Config) -> bool:
        return config.get(self.name) is not None
