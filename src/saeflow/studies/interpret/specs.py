"""Which SAEs the interpret study reads, and its own text set (pure Python: the workflow imports it at parse
time).

``interpret.saes`` lists registry names or ``architecture:NAME`` (the first SAE, by name, of that
architecture). An entry that names no SAE of the run's LM is left out when ``skip_missing`` is true (the
default list names SAEs of the ssae and architectures studies, which a config may not enable), otherwise it
is an error. The study reads its own held-out text set, ``interpret.contexts``: the held-out splits of
``interpret.corpora`` interleaved document by document (held out from every SAE's training), extracted with
``interpret.tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError

ARCH_PREFIX = "architecture:"
CORPUS = "interpret"
TEXTSET = f"{CORPUS}.contexts"


def _cfg(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("interpret") or {}


def interpret_enabled(config: Mapping[str, Any]) -> bool:
    return config.get("interpret") is not None


def interpret_saes(config: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Registry names of the SAEs to interpret, in config order, without repeats (SAEs of the run's LM
    only)."""
    if not interpret_enabled(config):
        return []
    cfg = _cfg(config)
    model = str(config["model"]["name"])
    lm = {n: s for n, s in specs.items() if str(s.get("model", model)) == model}
    skip = bool(cfg.get("skip_missing", True))
    out: list[str] = []
    for i, entry in enumerate(cfg.get("saes") or []):
        entry = str(entry)
        if entry.startswith(ARCH_PREFIX):
            arch = entry[len(ARCH_PREFIX) :]
            matches = sorted(n for n, s in lm.items() if s.get("architecture") == arch)
            name = matches[0] if matches else None
        else:
            name = entry if entry in lm else None
        if name is None:
            if skip:
                continue
            raise ConfigError(
                f"interpret.saes[{i}]: '{entry}' names no SAE of {model}; known: "
                f"{', '.join(sorted(lm))} (or set interpret.skip_missing: true)"
            )
        if name not in out:
            out.append(name)
    return out


def columns_json(config: Mapping[str, Any], sae: str) -> str:
    """The per-SAE autointerp columns (JSON) that other studies' tables show (Study.sae_columns)."""
    return f"{config['results_dir']}/interpret/{sae}/columns.json"


def interpret_columns(config: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {sae: columns_json(config, sae) for sae in interpret_saes(config, specs)}


def steering_sae(config: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The SAE steered (interpret.steering.sae, else the first interpreted SAE); None when steering is off."""
    steer = _cfg(config).get("steering")
    saes = interpret_saes(config, specs)
    if steer is None or not saes:
        return None
    name = steer.get("sae")
    if name is None:
        return saes[0]
    if name not in saes:
        raise ConfigError(
            f"interpret.steering.sae: '{name}' is not one of the interpreted SAEs ({', '.join(saes)})"
        )
    return str(name)


def interpret_budget(config: Mapping[str, Any], textset: str) -> int | None:
    if interpret_enabled(config) and textset == TEXTSET:
        return int(_cfg(config).get("tokens", 16384))
    return None


def interpret_corpora(config: Mapping[str, Any]) -> list[str]:
    return [CORPUS] if interpret_enabled(config) else []
