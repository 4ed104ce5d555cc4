"""Text sources -> documents -> a deterministic train/heldout split.

A source is a local file or folder (csv, tsv, jsonl, json, parquet, txt), a file inside an embedded
asset (``asset:NAME/path``) or a Hugging Face hub dataset (``hf:OWNER/NAME``). Every document is
whitespace-normalised and identified by a short sha1 of its text, so ids, de-duplication, the
heldout split (``hash(seed, id) < heldout_fraction``) and the order of the output files (sorted by
``hash(seed, id)``, so any prefix is a uniform sample) do not move when documents are added.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from saeflow import __version__
from saeflow.assets import require_asset
from saeflow.errors import AssetError, ConfigError, DataError
from saeflow.io import read_jsonl, write_json, write_jsonl
from saeflow.runtime import provenance

log = logging.getLogger(__name__)

FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "tsv": (".tsv", ".tab"),
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "parquet": (".parquet", ".pq"),
    "txt": (".txt", ".text"),
}
HUB_SCHEME = "hf:"
_HUB_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)?$")
_TABULAR_KEYS = ("text_field", "where", "exclude")


@dataclass(frozen=True)
class Document:
    id: str
    """Short sha1 of the normalised text (stable across runs, sources and seeds)."""
    text: str
    """Whitespace-normalised text."""
    source: str
    """Label of the source file (or hub split) it came from."""

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "source": self.source}


@dataclass(frozen=True)
class SourceSpec:
    """One text source of a corpus (mirrors ``corpora.NAME.sources[i]`` in the config)."""

    path: str
    """Local file or folder, ``asset:NAME/path``, or ``hf:OWNER/NAME``."""
    format: str | None = None
    """csv, tsv, jsonl, json, parquet or txt; default: from each file's extension."""
    glob: str | None = None
    """For a folder: files to read, relative to it (default: all files of a supported format)."""
    exclude_glob: tuple[str, ...] = ()
    """For a folder: fnmatch patterns (on the path relative to the folder) of files to skip."""
    text_field: str | None = None
    """Column holding the text in tabular data (default ``text``)."""
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Keep only rows whose column value is in the list (case-insensitive)."""
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Drop rows whose column value is in the list (case-insensitive)."""
    split: str = "train"
    """Hub datasets: the split to read."""
    subset: str | None = None
    """Hub datasets: the configuration name, if the dataset has several."""
    paragraphs: bool = False
    """txt: one document per blank-line-separated paragraph instead of per line."""
    name: str | None = None
    """Label used in Document.source and the stats (default: the file or folder name)."""

    @classmethod
    def from_dict(cls, d: Mapping | str, *, key: str = "source") -> SourceSpec:
        if isinstance(d, SourceSpec):
            return d
        if isinstance(d, str):
            d = {"path": d}
        if not isinstance(d, Mapping) or "path" not in d:
            raise ConfigError(f"{key}: expected a mapping with at least 'path'; got {d!r}")
        _check_keys(d, cls, key)
        fmt = d.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise ConfigError(f"{key}.format must be one of {', '.join(FORMATS)}; got {fmt!r}")
        excl = d.get("exclude_glob") or ()
        excl = (excl,) if isinstance(excl, str) else tuple(str(g) for g in excl)
        return cls(
            path=str(d["path"]),
            format=fmt,
            glob=d.get("glob"),
            exclude_glob=excl,
            text_field=d.get("text_field"),
            where=_value_filter(d.get("where"), key=f"{key}.where"),
            exclude=_value_filter(d.get("exclude"), key=f"{key}.exclude"),
            split=str(d.get("split") or "train"),
            subset=d.get("subset"),
            paragraphs=bool(d.get("paragraphs", False)),
            name=d.get("name"),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(exclude_glob=list(self.exclude_glob), where=_plain(self.where), exclude=_plain(self.exclude))
        return d


@dataclass(frozen=True)
class CorpusSpec:
    """A named corpus: its sources and how it is cleaned, sampled and split."""

    sources: tuple[SourceSpec, ...]
    heldout_fraction: float = 0.05
    """Share of documents in the heldout split (by hash of seed and id)."""
    min_chars: int = 20
    """Documents shorter than this (after normalisation) are dropped."""
    max_documents: int | None = None
    """Keep at most this many documents (deterministic sample by hash); None keeps all."""
    shuffle: bool = True
    """Write documents in hash order (any prefix is a uniform sample) instead of source order."""

    @classmethod
    def from_dict(cls, d: Mapping, *, key: str = "corpus") -> CorpusSpec:
        if isinstance(d, CorpusSpec):
            return d
        if not isinstance(d, Mapping):
            raise ConfigError(f"{key}: expected a mapping with 'sources'; got {d!r}")
        _check_keys(d, cls, key)
        sources = d.get("sources")
        if not sources or isinstance(sources, (str, Mapping)):
            raise ConfigError(f"{key}.sources must be a non-empty list of sources")
        frac = float(d.get("heldout_fraction", 0.05))
        if not 0.0 < frac < 1.0:
            raise ConfigError(f"{key}.heldout_fraction must be between 0 and 1 (exclusive); got {frac}")
        min_chars = int(d.get("min_chars", 20))
        max_docs = d.get("max_documents")
        if max_docs is not None and int(max_docs) < 2:
            raise ConfigError(f"{key}.max_documents must be at least 2 or null; got {max_docs}")
        return cls(
            sources=tuple(SourceSpec.from_dict(s, key=f"{key}.sources[{i}]") for i, s in enumerate(sources)),
            heldout_fraction=frac,
            min_chars=max(1, min_chars),
            max_documents=None if max_docs is None else int(max_docs),
            shuffle=bool(d.get("shuffle", True)),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = [s.to_dict() for s in self.sources]
        return d


@dataclass
class SourceStats:
    """What happened to the rows of one source file."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    """Rows / lines / strings read."""
    filtered_out: int = 0
    """Dropped by where/exclude."""
    too_short: int = 0
    """Empty or shorter than min_chars after normalisation."""
    duplicates: int = 0
    """Exact duplicates of an earlier document (of any source) dropped."""
    sampled_out: int = 0
    """Dropped by max_documents."""
    train: int = 0
    heldout: int = 0


class CorpusSplit(NamedTuple):
    train: list[Document]
    heldout: list[Document]
    stats: dict
    """JSON-ready record: counts overall and per source, the spec, seed and provenance."""


def _check_keys(d: Mapping, cls: type, key: str) -> None:
    allowed = sorted(cls.__dataclass_fields__)
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


# --------------------------------------------------------------------------- ids and hashing


def normalize_text(text: Any) -> str:
    return " ".join(str(text).split())


def doc_id(text: str) -> str:
    """Stable id of a (normalised) text: the first 16 hex digits of its sha1."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def hash_unit(seed: int, salt: str, doc: str) -> float:
    """Map (seed, salt, id) to [0, 1) uniformly and deterministically."""
    digest = hashlib.sha1(f"{seed}\x1f{salt}\x1f{doc}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_heldout(doc: str, seed: int, fraction: float) -> bool:
    """A document is heldout iff hash(seed, id) < fraction: stable when other documents are added."""
    return hash_unit(seed, "heldout", doc) < fraction


# --------------------------------------------------------------------------- filters


def _norm_value(v: Any) -> str:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if isinstance(v, bool):
        v = str(v).lower()
    return str(v).strip().casefold()


def _value_filter(d: Any, *, key: str) -> dict[str, tuple[str, ...]]:
    if not d:
        return {}
    if not isinstance(d, Mapping):
        raise ConfigError(f"{key} must map a column to a list of values; got {d!r}")
    out = {}
    for col, values in d.items():
        if isinstance(values, (str, int, float, bool)):
            values = [values]
        if not isinstance(values, Iterable) or not values:
            raise ConfigError(f"{key}.{col} must be a non-empty list of values; got {values!r}")
        out[str(col)] = tuple(_norm_value(v) for v in values)
    return out


def _plain(d: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
    return {k: list(v) for k, v in d.items()}


# --------------------------------------------------------------------------- reading files


def _format_of(path: Path, source: SourceSpec) -> str:
    if source.format:
        return source.format
    suffix = path.suffix.lower()
    for fmt, exts in FORMATS.items():
        if suffix in exts:
            return fmt
    raise DataError(
        f"{path}: cannot tell the format from the extension; set 'format' to one of {', '.join(FORMATS)}"
    )


def _source_files(source: SourceSpec, root: Path) -> list[tuple[Path, str]]:
    """(file, label) pairs of a local source, in a deterministic order."""
    base = source.name or root.name
    if root.is_file():
        if source.glob or source.exclude_glob:
            raise ConfigError(
                f"{source.path}: 'glob'/'exclude_glob' only apply to folders, and this is a file"
            )
        return [(root, base)]
    if source.glob:
        files = [p for p in root.glob(source.glob) if p.is_file()]
    else:
        exts = FORMATS[source.format] if source.format else tuple(e for es in FORMATS.values() for e in es)
        files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts]
    rels = {p: p.relative_to(root).as_posix() for p in files}
    kept = sorted(
        (p for p in files if not any(part.startswith(".") for part in Path(rels[p]).parts)
         and not any(fnmatch.fnmatch(rels[p], g) for g in source.exclude_glob)),
        key=lambda p: rels[p],
    )  # fmt: skip
    if not kept:
        what = f"glob {source.glob!r}" if source.glob else "a supported extension"
        excl = f" after exclude_glob {list(source.exclude_glob)}" if source.exclude_glob else ""
        raise DataError(f"{source.path}: no files match {what} in folder {root}{excl}")
    return [(p, f"{base}/{rels[p]}") for p in kept]


def _read_table(path: Path, fmt: str):
    import pandas as pd

    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False)
        if fmt == "parquet":
            try:
                return pd.read_parquet(path)
            except ImportError as err:
                raise AssetError(
                    f"{path}: reading parquet needs pyarrow (pip install pyarrow): {err}"
                ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot read as {fmt}: {err}") from None
    raise AssertionError(fmt)


def _read_jsonl(path: Path) -> list[Any]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{lineno}: invalid JSON line ({err.msg})") from None
    return rows


def _leaf_strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _leaf_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _leaf_strings(v)


def _texts_from_frame(df, where_label: str, source: SourceSpec, st: SourceStats) -> list[Any]:
    """Apply where/exclude and return the text column of a pandas DataFrame."""
    text_field = source.text_field or "text"
    columns = [str(c) for c in df.columns]
    for col in [text_field, *source.where, *source.exclude]:
        if col not in columns:
            role = "text_field" if col == text_field else "filter column"
            raise DataError(f"{where_label}: no column '{col}' ({role}); columns are: {', '.join(columns)}")
    st.rows += len(df)
    mask = None
    for col, values in source.where.items():
        m = df[col].map(_norm_value).isin(values)
        mask = m if mask is None else mask & m
    for col, values in source.exclude.items():
        m = ~df[col].map(_norm_value).isin(values)
        mask = m if mask is None else mask & m
    if mask is not None:
        st.filtered_out += int((~mask).sum())
        df = df[mask]
    return df[text_field].tolist()


def _texts_from_file(path: Path, source: SourceSpec, st: SourceStats) -> list[Any]:
    import pandas as pd

    fmt = _format_of(path, source)
    tabular_keys = [k for k in _TABULAR_KEYS if getattr(source, k)]
    if fmt in ("csv", "tsv", "parquet"):
        return _texts_from_frame(_read_table(path, fmt), str(path), source, st)
    if fmt == "txt":
        if tabular_keys:
            raise ConfigError(f"{source.path}: {', '.join(tabular_keys)} do not apply to txt files ({path})")
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not UTF-8 text ({err})") from None
        parts = re.split(r"\n\s*\n", raw) if source.paragraphs else raw.splitlines()
        parts = [p for p in parts if p.strip()]
        st.rows += len(parts)
        return parts
    if fmt == "jsonl":
        data: Any = _read_jsonl(path)
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: invalid JSON ({err})") from None
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        return _texts_from_frame(pd.DataFrame.from_records(data), str(path), source, st)
    if fmt == "jsonl" and not all(isinstance(r, str) for r in data):
        raise DataError(f"{path}: each JSON line must be an object (a record) or a string")
    if tabular_keys:
        raise ConfigError(
            f"{source.path}: {', '.join(tabular_keys)} need a list of records, but {path} is "
            "nested JSON (its leaf strings are used as documents)"
        )
    texts = list(_leaf_strings(data))
    st.rows += len(texts)
    return texts


def _texts_from_hub(source: SourceSpec, st: SourceStats) -> list[Any]:
    repo = source.path[len(HUB_SCHEME) :]
    if not _HUB_RE.match(repo):
        raise ConfigError(f"bad hub dataset id {source.path!r}: expected 'hf:OWNER/NAME'")
    try:
        import datasets
    except ImportError:
        raise AssetError(
            f"{source.path}: reading hub datasets needs the 'datasets' package (pip install datasets); "
            "or download the data and point 'path' at a local parquet/jsonl/csv file"
        ) from None
    try:
        ds = datasets.load_dataset(repo, source.subset, split=source.split)
    except Exception as err:  # noqa: BLE001 (network, auth, offline cache miss, bad split: user-facing)
        raise AssetError(
            f"{source.path}: cannot load split '{source.split}' from the Hugging Face hub "
            f"({type(err).__name__}: {err}); offline (HF_HUB_OFFLINE=1) it must be in the local cache, "
            "or point 'path' at a local copy"
        ) from None
    label = f"{source.path}[{source.split}]"
    needed = list(dict.fromkeys([source.text_field or "text", *source.where, *source.exclude]))
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{label}: no column(s) {', '.join(missing)}; columns are: {', '.join(ds.column_names)}"
        )
    return _texts_from_frame(ds.select_columns(needed).to_pandas(), label, source, st)


# --------------------------------------------------------------------------- public API


def _load_source(
    source: SourceSpec, resources_dir: str | Path, min_chars: int
) -> tuple[list[Document], dict[str, SourceStats]]:
    stats: dict[str, SourceStats] = {}
    docs: list[Document] = []
    if source.path.startswith(HUB_SCHEME):
        label = source.name or f"{source.path}[{source.split}]"
        st = stats.setdefault(label, SourceStats(files=[source.path]))
        inputs = [(label, _texts_from_hub(source, st))]
    else:
        root = require_asset(source.path, resources_dir)
        inputs = []
        for path, label in _source_files(source, root):
            st = stats.setdefault(label, SourceStats())
            st.files.append(str(path))
            inputs.append((label, _texts_from_file(path, source, st)))
    for label, texts in inputs:
        st = stats[label]
        for raw in texts:
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                st.too_short += 1
                continue
            text = normalize_text(raw)
            if len(text) < min_chars:
                st.too_short += 1
                continue
            docs.append(Document(doc_id(text), text, label))
    return docs, stats


def load_documents(
    source: SourceSpec | Mapping, resources_dir: str | Path, *, min_chars: int = 20
) -> list[Document]:
    """All documents of one source, normalised, filtered, short ones dropped (duplicates kept)."""
    return _load_source(SourceSpec.from_dict(source), resources_dir, min_chars)[0]


def corpus_spec(config: Mapping, name: str) -> CorpusSpec:
    """The spec of corpus `name` in a (validated) workflow config."""
    corpora = config.get("corpora") or {}
    if name not in corpora:
        known = ", ".join(sorted(corpora)) or "none"
        raise ConfigError(f"unknown corpus '{name}'; configured corpora: {known}")
    return CorpusSpec.from_dict(corpora[name], key=f"corpora.{name}")


def _words(docs: list[Document]) -> int:
    return sum(len(d.text.split()) for d in docs)


def build_corpus(
    spec: CorpusSpec | Mapping, *, seed: int, resources_dir: str | Path, name: str = "corpus"
) -> CorpusSplit:
    """Load every source, de-duplicate (keep first), sample, order and split deterministically."""
    spec = CorpusSpec.from_dict(spec, key=f"corpora.{name}")
    seen: set[str] = set()
    docs: list[Document] = []
    stats: dict[str, SourceStats] = {}
    for source in spec.sources:
        loaded, src_stats = _load_source(source, resources_dir, spec.min_chars)
        for label, st in src_stats.items():
            if label in stats:  # two sources with the same label: merge their counts
                prev = stats[label]
                for f, v in asdict(st).items():
                    setattr(prev, f, getattr(prev, f) + v)
            else:
                stats[label] = st
        for d in loaded:
            if d.id in seen:
                stats[d.source].duplicates += 1
                continue
            seen.add(d.id)
            docs.append(d)
    rank = {d.id: hash_unit(seed, "order", d.id) for d in docs}
    if spec.max_documents is not None and len(docs) > spec.max_documents:
        keep = set(sorted(rank, key=rank.__getitem__)[: spec.max_documents])
        for d in docs:
            if d.id not in keep:
                stats[d.source].sampled_out += 1
        docs = [d for d in docs if d.id in keep]
    if spec.shuffle:
        docs.sort(key=lambda d: rank[d.id])
    train, heldout = [], []
    for d in docs:
        if is_heldout(d.id, seed, spec.heldout_fraction):
            heldout.append(d)
            stats[d.source].heldout += 1
        else:
            train.append(d)
            stats[d.source].train += 1
    for split_name, part in (("train", train), ("heldout", heldout)):
        if not part:
            raise DataError(
                f"corpus '{name}': the {split_name} split is empty ({len(docs)} documents after filtering, "
                f"heldout_fraction={spec.heldout_fraction}); add data, relax where/exclude/min_chars "
                "or change heldout_fraction"
            )
    files = [f for st in stats.values() for f in st.files if not f.startswith(HUB_SCHEME)]
    record = {
        "corpus": name,
        "seed": seed,
        "documents": {"train": len(train), "heldout": len(heldout), "total": len(docs)},
        "words": {"train": _words(train), "heldout": _words(heldout)},
        "duplicates_dropped": sum(st.duplicates for st in stats.values()),
        "too_short_dropped": sum(st.too_short for st in stats.values()),
        "filtered_out": sum(st.filtered_out for st in stats.values()),
        "sampled_out": sum(st.sampled_out for st in stats.values()),
        "sources": {label: asdict(st) for label, st in stats.items()},
        "order": "hash(seed, id)" if spec.shuffle else "source order",
        "saeflow_version": __version__,
        "provenance": provenance(spec.to_dict(), seed=seed, inputs=files),
    }
    log.info(
        "corpus %s: %d train / %d heldout documents (%d duplicates, %d filtered, %d too short)",
        name, len(train), len(heldout), record["duplicates_dropped"], record["filtered_out"],
        record["too_short_dropped"],
    )  # fmt: skip
    return CorpusSplit(train, heldout, record)


def write_corpus(
    split: CorpusSplit, train_path: str | Path, heldout_path: str | Path, stats_path: str | Path
) -> None:
    """Write the two JSONL splits and the stats, each atomically (stats last)."""
    write_jsonl(train_path, (d.to_dict() for d in split.train))
    write_jsonl(heldout_path, (d.to_dict() for d in split.heldout))
    write_json(stats_path, split.stats)


def read_documents(path: str | Path) -> list[Document]:
    """Read a split written by `write_corpus`."""
    return [Document(r["id"], r["text"], r.get("source", "")) for r in read_jsonl(path)]
