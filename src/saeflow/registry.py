"""The SAE registry: every SAE of a run, by name, with its fully resolved spec.

The SAEs come from three places, in this order: the hand-written ones under ``saes:``, the grid points of
``sweeps:``, and those each active study adds (``saeflow.studies.STUDIES``, in list order; a study sees the
SAEs defined before it). Snakemake rules take ``sae_specs(config)[name]`` as ``params:``, so changing any
hyper-parameter of one SAE reruns exactly that SAE and what depends on it.

``python -m saeflow.registry --configfile X [--configfile Y]`` prints every SAE of a run.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
from collections.abc import Mapping
from typing import Any

from saeflow.errors import ConfigError, SaeflowError
from saeflow.sae_spec import resolve_sae, spec_id
from saeflow.studies import active_studies
from saeflow.study import core_extraction_budget


def sweep_specs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The SAEs of `sweeps:`: each sweep's `base` spec with every combination of its `grid` values (Cartesian
    product), named `<sweep>-<spec_id>`, so a sweep needs no hand-made names and a point never trains
    twice."""
    out: dict[str, dict[str, Any]] = {}
    for sweep, body in (config.get("sweeps") or {}).items():
        grid = body.get("grid") or {}
        keys = sorted(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            spec = {**copy.deepcopy(body.get("base") or {}), **dict(zip(keys, values, strict=True))}
            out[f"{sweep}-{spec_id(spec)}"] = spec
    return out


def _add(
    specs: dict[str, dict[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    source: str,
    config: Mapping[str, Any],
) -> None:
    for name, spec in new.items():
        if name in specs:
            raise ConfigError(f"SAE name '{name}' is defined twice (again by {source})")
        specs[name] = resolve_sae(name, spec, config)


def _check_text_sets(specs: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any]) -> None:
    """Every `train_on` / `monitor_on` / `eval_sets` entry (and evaluation.eval_sets / saelens_eval_sets)
    names a configured corpus or one an active study writes itself (a selection of text, Study.corpora)."""
    corpora = set(config.get("corpora") or {})
    produced = {c for study in active_studies(config) for c in study.corpora(config)}
    for name, spec in specs.items():
        for key in ("train_on", "monitor_on"):
            if spec.get(key) is None:
                continue
            textset = str(spec[key])
            corpus, _, split = textset.partition(".")
            if not split:
                raise ConfigError(
                    f"saes.{name}.{key}: '{textset}' is not a text set '<corpus>.<split>' "
                    "(e.g. 'general.train')"
                )
            if corpus not in corpora | produced:
                raise ConfigError(
                    f"saes.{name}.{key}: unknown corpus '{corpus}' in '{textset}'; "
                    f"configured corpora: {', '.join(sorted(corpora)) or 'none'}"
                )
    evaluation = config.get("evaluation") or {}
    eval_set_lists = [
        (f"saes.{name}.{key}", spec.get(key))
        for name, spec in specs.items()
        for key in ("eval_sets", "saelens_eval_sets")
    ]
    eval_set_lists += [
        (f"evaluation.{key}", evaluation.get(key)) for key in ("eval_sets", "saelens_eval_sets")
    ]
    for where, names in eval_set_lists:
        for es in names or []:
            if es not in corpora:
                known = ", ".join(sorted(corpora)) or "none"
                raise ConfigError(f"{where}: unknown corpus '{es}'; configured corpora: {known}")


def _check_parents(specs: Mapping[str, Mapping[str, Any]]) -> None:
    for name, spec in specs.items():
        parent = spec.get("init_from")
        if parent is not None and parent not in specs:
            raise ConfigError(
                f"saes.{name}.init_from: unknown SAE '{parent}'; known: {', '.join(sorted(specs))}"
            )
    for name in specs:
        chain, current = [name], specs[name].get("init_from")
        while current is not None:
            if current in chain:
                cycle = chain[chain.index(current) :] + [current]
                raise ConfigError(f"saes: init_from cycle {' -> '.join(cycle)}")
            chain.append(current)
            current = specs[current].get("init_from")


def sae_specs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """All SAEs of a run, resolved: the configured ones, the sweeps' and those the active studies add."""
    specs: dict[str, dict[str, Any]] = {}
    _add(specs, dict(config.get("saes") or {}), "saes", config)
    _add(specs, sweep_specs(config), "sweeps", config)
    for study in active_studies(config):
        _add(specs, study.saes(config, specs), f"the {study.name} study", config)
    _check_parents(specs)
    _check_text_sets(specs, config)
    return specs


TRAINING_IRRELEVANT = frozenset({"eval_sets", "saelens_eval_sets", "checkpoint_every", "log_every"})
"""Spec keys that do not change what an SAE learns: two SAEs equal but for these are trained once."""


def canonical_names(
    specs: Mapping[str, Mapping[str, Any]], same_text: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every SAE → the first SAE (registry order) whose resolved spec is identical but for
    ``TRAINING_IRRELEVANT`` keys, with ``init_from`` compared by its parent's canonical name (a finetune of
    two identical parents is one SAE). `same_text` maps a text set to an identical one it is compared as
    (e.g. a selection that is provably the first tokens of a corpus split; :func:`text_aliases`). An SAE that
    is its own canonical name trains; any other is an alias whose files are the canonical SAE's (workflow rule
    ``alias_sae``), evaluated and tabled under its own name."""
    canon: dict[str, str] = {}
    first: dict[str, str] = {}

    def resolve(name: str, trail: tuple[str, ...] = ()) -> str:
        if name in canon:
            return canon[name]
        if name in trail:  # a cycle: _check_parents reports it
            return name
        spec = {k: v for k, v in specs[name].items() if k not in TRAINING_IRRELEVANT}
        spec["train_on"] = (same_text or {}).get(str(spec["train_on"]), spec["train_on"])
        parent = spec.get("init_from")
        if parent is not None and parent in specs:
            spec["init_from"] = resolve(parent, (*trail, name))
        key = spec_id(spec)
        canon[name] = first.setdefault(key, name)
        return canon[name]

    for name in specs:
        resolve(name)
    return canon


def text_aliases(config: Mapping[str, Any]) -> dict[str, str]:
    """Text sets the active studies declare identical to another (``Study.text_aliases(config)``, optional):
    {"medical.sel-domain": "medical.train"} when that selection's activations are those of medical.train."""
    out: dict[str, str] = {}
    for study in active_studies(config):
        out.update(getattr(study, "text_aliases", lambda _c: {})(config) or {})
    return out


def sae_aliases(
    specs: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """alias → canonical SAE, for the SAEs that are not trained themselves (see :func:`canonical_names`)."""
    same = text_aliases(config) if config is not None else {}
    return {a: c for a, c in canonical_names(specs, same).items() if a != c}


def own_eval_sets(spec: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """The eval sets an SAE's spec names, else `evaluation.eval_sets`: its rows of the core metrics table."""
    return list(spec.get("eval_sets") or config["evaluation"]["eval_sets"])


def evaluated_sets(
    specs: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any], aliases: Mapping[str, str]
) -> dict[str, list[str]]:
    """{SAE: every eval set its one evaluation job covers}: its own (:func:`own_eval_sets`), those the
    active studies read it on (Study.eval_sets), and, for a canonical SAE, its aliases' (an alias's
    evaluation is its canonical SAE's, renamed)."""
    out = {name: own_eval_sets(spec, config) for name, spec in specs.items()}
    corpora = set(config.get("corpora") or {})
    for study in active_studies(config):
        for sae, names in study.eval_sets(config, specs).items():
            if sae not in out:
                raise ConfigError(f"the {study.name} study reads the evaluation of an unknown SAE '{sae}'")
            unknown = [es for es in names if es not in corpora]
            if unknown:
                raise ConfigError(
                    f"the {study.name} study reads SAE '{sae}' on unknown eval sets {unknown}; "
                    f"configured corpora: {', '.join(sorted(corpora)) or 'none'}"
                )
            out[sae] = list(dict.fromkeys([*out[sae], *names]))
    for alias, canonical in aliases.items():
        out[canonical] = list(dict.fromkeys([*out[canonical], *out[alias]]))
    return out


def default_saelens_sets(config: Mapping[str, Any], eval_sets: list[str]) -> list[str]:
    """Of `eval_sets`, those `evaluation.saelens_eval_sets` names (null: all of them)."""
    default = (config.get("evaluation") or {}).get("saelens_eval_sets")
    return list(eval_sets) if default is None else [es for es in eval_sets if es in default]


def saelens_sets(
    specs: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    aliases: Mapping[str, str],
    evaluated: Mapping[str, list[str]],
) -> dict[str, list[str]]:
    """{SAE: the eval sets on which its evaluation job also scores SAELens' convention (one more upper
    pass per batch)}: the spec's `saelens_eval_sets`, else `evaluation.saelens_eval_sets` (null: every set
    it is evaluated on), within its evaluated sets (:func:`evaluated_sets`); a canonical SAE's covers its
    aliases'."""

    def wanted(name: str) -> list[str]:
        sets = evaluated.get(name) or own_eval_sets(specs[name], config)
        chosen = specs[name].get("saelens_eval_sets")
        return default_saelens_sets(config, sets) if chosen is None else chosen

    out = {name: wanted(name) for name in specs}
    for alias, canonical in aliases.items():
        out[canonical] = [*out[canonical], *out[alias]]
    return {name: [es for es in evaluated[name] if es in out[name]] for name in evaluated}


def extraction_settings(config: Mapping[str, Any], textset: str) -> dict[str, Any]:
    """Token budget and storage settings of one text set ("<corpus>.<split>") for extract_activations.

    The first active study that claims the text set (``Study.extraction_budget``) sets its budget; otherwise
    held-out sets get `extraction.heldout_tokens` and every other set `extraction.train_tokens`.
    """
    ex = config["extraction"]
    own = [b for b in (s.extraction_budget(config, textset) for s in active_studies(config)) if b is not None]
    return {
        "max_tokens": own[0] if own else core_extraction_budget(config, textset),
        "batch_size": config["model"]["batch_size"],
        "shard_rows": ex["shard_rows"],
        "dtype": ex.get("dtype", "float16"),
        "compute_dtype": ex.get("compute_dtype") or config["model"]["dtype"],
    }


def registry_table(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per SAE: name, study, model, layer, train_on, init_from, architecture, k, d_sae, alias_of (the
    identical SAE it shares its training with, or empty)."""
    specs = sae_specs(config)
    aliases = sae_aliases(specs, config)
    origin: dict[str, str] = {}
    so_far: dict[str, dict[str, Any]] = {}
    for source, new in (("saes", dict(config.get("saes") or {})), ("sweeps", sweep_specs(config))):
        origin.update(dict.fromkeys(new, source))
        so_far.update({n: specs[n] for n in new})
    for study in active_studies(config):
        new = study.saes(config, so_far)
        origin.update(dict.fromkeys(new, study.name))
        so_far.update({n: specs[n] for n in new})
    model = config.get("model") or {}
    return [
        {
            "name": name,
            "study": origin.get(name, "?"),
            "model": spec.get("model", model.get("name")),
            "layer": spec.get("layer", model.get("layer")),
            "train_on": spec["train_on"],
            "init_from": spec.get("init_from") or "",
            "architecture": spec["architecture"],
            "k": spec.get("k"),
            "d_sae": spec.get("d_sae"),
            "alias_of": aliases.get(name, ""),
        }
        for name, spec in specs.items()
    ]


def main(argv: list[str] | None = None) -> None:
    from pathlib import Path

    from saeflow.config import load_config_files

    parser = argparse.ArgumentParser(prog="python -m saeflow.registry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", action="append", default=[], help="overlay(s) on config/config.yaml")
    parser.add_argument("--root", default=".", help="the project's root (holds config/)")
    args = parser.parse_args(argv)
    try:
        config = load_config_files(Path(args.root), *args.configfile)
        rows = registry_table(config)
    except SaeflowError as err:
        sys.exit(f"saeflow error: {err}")
    import pandas as pd

    print(pd.DataFrame(rows).to_string(index=False))
    print(f"\n{len(rows)} SAEs")


if __name__ == "__main__":
    main()
