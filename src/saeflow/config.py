"""Config validation: JSON Schema (with defaults filled in) that names the offending key in one line."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

from saeflow.errors import ConfigError


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {', '.join(allowed)}"
    return error.message


def workflow_schema(core_schema: str | Path) -> dict:
    """The whole config schema: the core sections of `core_schema` plus each study's section schema
    (saeflow/studies/<study>/schema.yaml), so a new study adds its section without editing the core schema."""
    from saeflow.studies import STUDIES, study_schema

    schema = yaml.safe_load(Path(core_schema).read_text())
    for study in STUDIES:
        if study.name in schema["properties"]:
            raise ConfigError(f"{core_schema}: section '{study.name}' belongs to the {study.name} study's schema")
        schema["properties"][study.name] = study_schema(study.name)
    return schema


def validate_config(config: dict, schema: dict | str | Path, *, source: str = "config") -> dict:
    """Return a copy of `config` with schema defaults filled in; raise ConfigError naming the first bad key.
    `schema` is a schema dict or the path of the core schema (the studies' sections are added to it)."""
    if not isinstance(schema, dict):
        schema = workflow_schema(schema)
    resolved = copy.deepcopy(dict(config))
    errors = sorted(_Validator(schema).iter_errors(resolved), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise ConfigError(f"{source}: key '{_key_path(err)}': {_describe(err)}")
    return resolved


def merge_config(base: dict, update: Mapping) -> dict:
    """Snakemake's --configfile merge, in place: nested mappings merged key by key, anything else replaced."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = value
    return base


def load_config_files(root: str | Path, *overlays: str | Path) -> dict:
    """`config/config.yaml` of the project at `root` with `overlays` merged on top (as `snakemake --configfile`
    does), validated against `config/schema.yaml` with defaults filled in."""
    root = Path(root)
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    for overlay in overlays:
        merge_config(config, yaml.safe_load((root / overlay).read_text()) or {})
    return validate_config(config, root / "config" / "schema.yaml")


def load_workflow_config(config: dict, schema_path: str | Path) -> dict:
    """Validate inside the Snakefile; print one clear line instead of a traceback on a bad config."""
    try:
        return validate_config(config, schema_path)
    except ConfigError as err:
        raise SystemExit(f"saeflow config error: {err}") from None


def config_entry(config: Mapping, section: str, name: str, *, noun: str) -> dict:
    """A copy of `config[section][name]` as a plain dict (rules take it as `params:`, so a changed value reruns
    exactly the jobs that use it); an unknown name is a ConfigError listing the configured ones."""
    entries = config.get(section) or {}
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise ConfigError(f"unknown {noun} '{name}'; configured {section}: {known}")
    return dict(entries[name])
