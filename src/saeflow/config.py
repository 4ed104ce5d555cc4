"""Config validation: JSON Schema (with defaults filled in) that names the offending key in one line.

Config files are read by :func:`load_yaml_file`: a YAML syntax error names the file and line, a key given
twice in one mapping is refused (naming the file, the key and both lines; plain YAML keeps the last
silently). The Snakefile checks `config/config.yaml` and every ``--configfile`` overlay this way
(:func:`check_config_files`) and then :func:`load_workflow_config` validates the merged config, the device,
the SAE registry and, once the model's config is known, every layer an SAE reads.
"""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from saeflow.errors import ConfigError, SaeflowError


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
            raise ConfigError(
                f"{core_schema}: section '{study.name}' belongs to the {study.name} study's schema"
            )
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


# --------------------------------------------------------------------------- YAML files

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _check_duplicate_keys(
    node: yaml.Node, where: str, path: str = "", seen_nodes: set[int] | None = None
) -> None:
    """Refuse a key given twice in one mapping (at any depth), naming the key path and both lines."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:  # an alias of a node already checked
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                key = key_node.value
                full = f"{path}.{key}" if path else key
                line = key_node.start_mark.line + 1
                if key in lines:
                    raise ConfigError(
                        f"{where}: key '{full}' is given twice (lines {lines[key]} and {line}); "
                        "YAML would silently keep the last one: delete one of them"
                    )
                lines[key] = line
                _check_duplicate_keys(value_node, where, full, seen_nodes)
            else:
                _check_duplicate_keys(value_node, where, path, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, where, f"{path}[{i}]", seen_nodes)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicated mapping keys (see :func:`load_yaml`)."""

    where = "config"

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_duplicate_keys(node, self.where)
        return node


def load_yaml(text: str, where: str = "config") -> Any:
    """Parse YAML safely; a syntax error or a duplicated key is a one-line ConfigError naming `where` and the
    line."""
    loader = _UniqueKeyLoader(text)
    loader.where = where
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        what = " ".join(str(part) for part in (err.context, err.problem) if part)
        raise ConfigError(
            f"{where}: YAML syntax error at {at}: {what}; check the indentation and quoting there"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(err).split())})") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path, *, mapping: bool = True) -> Any:
    """A YAML file's content (a mapping of config keys unless `mapping` is false); an empty file is {}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config file ({err})") from None
    data = load_yaml(text, str(path))
    if data is None:
        return {}
    if mapping and not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of config keys at the top level, got a {type(data).__name__}"
        )
    return data


def check_config_files(*paths: str | Path) -> None:
    """For the Snakefile, before Snakemake reads them: each file parses, has no duplicated key and is a
    mapping; otherwise exit with one line naming the file (and the line)."""
    try:
        for path in paths:
            load_yaml_file(path)
    except ConfigError as err:
        raise SystemExit(f"saeflow config error: {err}") from None


def load_config_files(root: str | Path, *overlays: str | Path) -> dict:
    """`config/config.yaml` of the project at `root` with `overlays` merged on top (as `snakemake
    --configfile` does), validated against `config/schema.yaml` with defaults filled in."""
    root = Path(root)
    config = load_yaml_file(root / "config" / "config.yaml")
    for overlay in overlays:
        merge_config(config, load_yaml_file(root / overlay))
    return validate_config(config, root / "config" / "schema.yaml")


# --------------------------------------------------------------------------- the model's shape at config time


def _gguf_block_count(path: Path) -> int | None:
    """`<architecture>.block_count` from a GGUF file's header (key/value section only: milliseconds, no
    tensor data read); None when the file does not say."""
    scalar = {
        0: "<B",
        1: "<b",
        2: "<H",
        3: "<h",
        4: "<I",
        5: "<i",
        6: "<f",
        7: "<?",
        10: "<Q",
        11: "<q",
        12: "<d",
    }
    with open(path, "rb") as fh:

        def read(fmt: str):
            size = struct.calcsize(fmt)
            data = fh.read(size)
            if len(data) != size:
                raise EOFError
            return struct.unpack(fmt, data)[0]

        def string() -> str:
            return fh.read(read("<Q")).decode("utf-8", "replace")

        def value(kind: int):
            if kind == 8:
                return string()
            if kind == 9:
                item, n = read("<I"), read("<Q")
                if item in scalar:  # skip numeric arrays (token scores, ...) without decoding them
                    fh.seek(struct.calcsize(scalar[item]) * n, 1)
                    return None
                return [value(item) for _ in range(n)]
            return read(scalar[kind])

        try:
            if fh.read(4) != b"GGUF":
                return None
            version = read("<I")
            if version < 2:
                return None
            read("<Q")  # tensor count
            n_kv = read("<Q")
            arch = None
            counts: dict[str, int] = {}
            for _ in range(n_kv):
                key = string()
                v = value(read("<I"))
                if key == "general.architecture":
                    arch = v
                elif key.endswith(".block_count"):
                    counts[key.rsplit(".", 1)[0]] = int(v)
                if arch is not None and arch in counts:
                    return counts[arch]
        except (EOFError, KeyError, struct.error, OverflowError, ValueError):
            return None
    return counts.get(arch) if arch else None


def _config_json_layers(path: Path) -> int | None:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    text = cfg.get("text_config") or cfg
    n = text.get("num_hidden_layers") or text.get("n_layer") or cfg.get("num_hidden_layers")
    return int(n) if isinstance(n, int) else None


def model_layer_count(model_dir_or_source: str | Path) -> tuple[int, str] | None:
    """(number of layers, the file that says so) of a prepared model dir (prepared.json), a Hugging Face model
    dir (config.json) or a GGUF file; None when it is not known here (a hub id, a model not fetched yet)."""
    path = Path(model_dir_or_source).expanduser()
    if path.is_dir():
        marker = path / "prepared.json"
        if marker.is_file():
            try:
                return int(json.loads(marker.read_text())["n_layers"]), str(marker)
            except (OSError, ValueError, KeyError, TypeError):
                pass
        cfg = path / "config.json"
        n = _config_json_layers(cfg) if cfg.is_file() else None
        return (n, str(cfg)) if n else None
    if path.is_file() and path.suffix.lower() == ".gguf":
        n = _gguf_block_count(path)
        return (n, str(path)) if n else None
    return None


def lm_layers(
    config: Mapping[str, Any], saes: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, int]:
    """Every layer of the run's causal LM that something reads, keyed by who asks: `model.layer` and each SAE
    of that model with its own layer (`SAE 'name' layer`)."""
    model = config["model"]
    layers = {"model.layer": int(model["layer"])}
    for name, spec in (saes or {}).items():
        if (
            spec.get("model", model["name"]) == model["name"]
            and int(spec.get("layer", model["layer"])) != layers["model.layer"]
        ):
            layers[f"SAE '{name}' layer"] = int(spec["layer"])
    return layers


def check_layers(layers: Mapping[str, int], n_layers: int, model: str, where: str) -> None:
    """Each layer must be one of the model's 0..n_layers-1; otherwise a ConfigError naming the key."""
    for key, layer in layers.items():
        if not 0 <= int(layer) < n_layers:
            raise ConfigError(
                f"{key} is {layer}, but {model} has {n_layers} layers (0..{n_layers - 1}, "
                f"from {where}); choose a layer in that range"
            )


def check_model_layers(
    config: Mapping[str, Any], saes: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """At config time: once the model's config is known here (the prepared model, or a local source already on
    disk), every layer an SAE of the run's LM reads must exist."""
    from saeflow.paths import RunPaths

    paths = RunPaths.from_config(config)
    source = paths.resolve(config["model"]["source"])
    known = None
    marker = Path(paths.model_marker())
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("source") == source:  # else stale: the source has changed
                known = model_layer_count(marker.parent)
        except (OSError, ValueError, AttributeError):
            known = None
    if known is None:
        known = model_layer_count(source)
    if known is not None:
        check_layers(lm_layers(config, saes), known[0], config["model"]["name"], known[1])


def _jobs_bring_their_own_software(workflow: Any) -> bool:
    """Whether Snakemake runs the jobs in conda / container environments (their torch is not this one)."""
    methods = getattr(getattr(workflow, "deployment_settings", None), "deployment_method", None) or ()
    return any(str(getattr(m, "name", m)).lower() in ("conda", "apptainer") for m in methods)


def check_run_device(config: Mapping, workflow: Any = None) -> None:
    """The Snakefile's `onstart` check (before any job runs; a dry-run plans without it, so a paper config
    with device cuda still plans on a CPU machine): `device` against this torch, when jobs run here with it.
    Jobs a cluster runs elsewhere, or in their own conda / container environment, check the device themselves
    before any work (the job scripts call check_device with the GPU's visibility)."""
    from saeflow.runtime import check_device

    if _jobs_bring_their_own_software(workflow) or not getattr(workflow, "local_exec", True):
        return
    try:
        check_device(config["device"], key="device")
    except SaeflowError as err:
        raise SystemExit(f"saeflow config error: {err}") from None


def load_workflow_config(config: dict, schema_path: str | Path, *, workflow: Any = None) -> dict:
    """Validate inside the Snakefile: the schema, the SAE registry (k, architectures, extra keys, init_from
    cycles, corpora) and the model's layers once known; one clear line instead of a traceback. The device is
    checked when a run starts (check_run_device)."""
    from saeflow.registry import sae_specs

    try:
        resolved = validate_config(config, schema_path)
        check_model_layers(resolved, sae_specs(resolved))
        return resolved
    except SaeflowError as err:
        raise SystemExit(f"saeflow config error: {err}") from None


def config_entry(config: Mapping, section: str, name: str, *, noun: str) -> dict:
    """A copy of `config[section][name]` as a plain dict (rules take it as `params:`, so a changed value
    reruns exactly the jobs that use it); an unknown name is a ConfigError listing the configured ones."""
    entries = config.get(section) or {}
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise ConfigError(f"unknown {noun} '{name}'; configured {section}: {known}")
    return dict(entries[name])
