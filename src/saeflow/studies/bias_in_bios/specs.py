"""The Bias-in-Bios study in the SAE registry: its SSAE spec, the SAEs its table compares, its text set.

Kept free of heavy imports: the workflow imports it (through saeflow.registry) every time it parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from saeflow.errors import ConfigError
from saeflow.sae_spec import finetune_of

ARCH_PREFIX = "architecture:"


def _bib(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("bias_in_bios") or {}


def study_tag(config: Mapping[str, Any]) -> str:
    """Suffix of the study's paths and generated names ("" by default), so several studies can share the
    SAEs."""
    return str(_bib(config).get("tag") or "")


def selected_textset(config: Mapping[str, Any]) -> str:
    """General-corpus text retrieved with the ambiguous bios as seeds
    (results/texts/biasbios<tag>.retrieved.jsonl)."""
    return f"biasbios{study_tag(config)}.retrieved"


def bias_ssae_name(config: Mapping[str, Any]) -> str:
    return str((_bib(config).get("ssae") or {}).get("name", "bib_ssae")) + study_tag(config)


def bias_ssae_enabled(config: Mapping[str, Any]) -> bool:
    """The bias SSAE is generated when ``bias_in_bios.ssae`` is present and not null."""
    return _bib(config).get("ssae") is not None


def bias_ssae_specs(config: Mapping[str, Any], defined: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The study's SAE: the base GSAE's spec finetuned (init_from) on the retrieved text set."""
    if not bias_ssae_enabled(config):
        return {}
    if config.get("ssae") is None:
        raise ConfigError(
            "bias_in_bios.ssae retrieves with the ssae study's embedder and general-corpus cache: "
            "configure the ssae section, or set bias_in_bios.ssae to null"
        )
    ssae = _bib(config)["ssae"]
    base = ssae.get("base_sae", "gsae")
    spec = finetune_of(defined, base, ssae.get("finetune"), key="bias_in_bios.ssae.base_sae")
    # its core-metrics evaluation: the general corpus only (does finetuning on bios-like text cost fidelity
    # there?)
    general = (config.get("ssae") or {}).get("general_corpus", "general")
    spec.update(train_on=selected_textset(config), eval_sets=[general])
    return {bias_ssae_name(config): spec}


def selected_textset_budget(config: Mapping[str, Any], textset: str) -> int | None:
    """Extraction budget of the retrieved text set; None for any other text set."""
    if textset == selected_textset(config) and bias_ssae_enabled(config):
        return int(_bib(config)["ssae"]["budget_tokens"])
    return None


def selected_corpora(config: Mapping[str, Any]) -> list[str]:
    """The corpus the study writes itself: the retrieved general text its SSAE trains on."""
    return [selected_textset(config).split(".", 1)[0]] if bias_ssae_enabled(config) else []


def study_saes(config: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(label, registry name) of each SAE the study compares, in config order.

    An entry's ``sae`` is a registry name, or ``architecture:NAME`` (the first SAE, by name, of that
    architecture; the row is left out when the registry has none). ``ssae.name`` means the study's own SSAE
    (with the tag); its entry is left out when it is disabled. Any other unknown name is an error.
    """
    bib = _bib(config)
    ssae_name = str((bib.get("ssae") or {}).get("name", "bib_ssae"))
    out: list[tuple[str, str]] = []
    for i, entry in enumerate(bib.get("saes") or []):
        label, sae = str(entry["label"]), str(entry["sae"])
        if sae.startswith(ARCH_PREFIX):
            arch = sae[len(ARCH_PREFIX) :]
            matches = sorted(n for n, s in specs.items() if s.get("architecture") == arch)
            if matches:
                out.append((label, matches[0]))
            continue
        if sae == ssae_name:
            if not bias_ssae_enabled(config):
                continue
            sae = bias_ssae_name(config)
        if sae not in specs:
            raise ConfigError(
                f"bias_in_bios.saes[{i}].sae: unknown SAE '{sae}'; known: {', '.join(sorted(specs))}"
            )
        out.append((label, sae))
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"bias_in_bios.saes: labels must be distinct; got {labels}")
    return out


def compressed_study_saes(
    config: Mapping[str, Any], compared: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(label, registry name) of each compressed SAE ("GSAE comp. 1/8", "gsae"): the compared SAEs
    [(label, registry name)] whose label bias_in_bios.compress.saes lists; none when compress is null."""
    compress = _bib(config).get("compress")
    if compress is None:
        return []
    fraction = float(compress.get("fraction", 0.125))
    wanted = [str(s) for s in compress.get("saes", ("GSAE", "SSAE"))]
    return [(compressed_label(label, fraction), name) for label, name in compared if label in wanted]


def compressed_label(label: str, fraction: float) -> str:
    """Row label of a compressed SAE: the fraction as a short ratio, ("GSAE", 0.125) -> "GSAE comp. 1/8"."""
    return f"{label} comp. {Fraction(fraction).limit_denominator(1000)}"
