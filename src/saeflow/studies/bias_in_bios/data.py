"""Bias-in-Bios-style data: bios with a profession and a gender, and the SHIFT train/test sets built from
them.

One loader reads three kinds of source into the same frame (columns ``text``, ``profession``, ``gender``
with gender ``M``/``F``); the schema is recognised from the columns, or named with ``schema``:

* ``labhc``: the hub data set ``LabHC/bias_in_bios`` (``hf:LabHC/bias_in_bios``, needs the ``datasets``
  package and the hub or its cache) or a local parquet/jsonl/csv copy of it: ``hard_text``, ``profession``
  (an int, index into :data:`LABHC_PROFESSIONS`: professor = 21, nurse = 13), ``gender`` (0 male, 1 female).
* ``find``: bios with ``text``, ``profession`` (a name) and ``gender`` (``M``/``F``), e.g. the real
  surgeon/nurse subset kept beside the project for tests and benchmarks.
* ``bug``: the BUG sentences of the packaged fairness benchmark (``sentence_text``, ``profession``,
  ``g``: the gendered pronoun, which gives the gender). Every BUG sentence names its profession, which makes
  the task lexical; :func:`mask_profession` replaces the mention with a neutral word (docs/methods.md).

From the two chosen professions A and B, :func:`build_sets` draws, deterministically from a seed:
the balanced **test** set (the four profession × gender groups, equal counts), the **ambiguous** training
set (A only male, B only female, equal counts; profession and gender are confounded) and the balanced
**oracle** training set (four groups, equal counts). Test items are never in a training set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from saeflow.assets import require_asset
from saeflow.corpus import doc_id, hash_unit, normalize_text
from saeflow.errors import AssetError, ConfigError, DataError

# Index -> name of the 28 professions of LabHC/bias_in_bios (alphabetical; professor = 21, nurse = 13).
LABHC_PROFESSIONS = (
    "accountant", "architect", "attorney", "chiropractor", "comedian", "composer", "dentist", "dietitian",
    "dj", "filmmaker", "interior_designer", "journalist", "model", "nurse", "painter", "paralegal", "pastor",
    "personal_trainer", "photographer", "physician", "poet", "professor", "psychologist", "rapper",
    "software_engineer", "surgeon", "teacher", "yoga_teacher",
)  # fmt: skip
HUB_SCHEME = "hf:"
SCHEMAS = ("auto", "labhc", "find", "bug")
_SCHEMA_COLUMNS = {
    "labhc": ("hard_text", "profession", "gender"),
    "bug": ("sentence_text", "profession", "g"),
    "find": ("text", "profession", "gender"),
}
_MALE = {"m", "male", "man", "0", "he", "him", "his", "himself"}
_FEMALE = {"f", "female", "woman", "1", "she", "her", "hers", "herself"}
GROUPS = (("A", "M"), ("A", "F"), ("B", "M"), ("B", "F"))
"""The four groups (profession role, gender); A is the profession that is male-only in the ambiguous set."""


_SOURCE_KEYS = (
    "path",
    "split",
    "split_field",
    "schema",
    "text_field",
    "profession_field",
    "gender_field",
    "gender_labels",
    "profession_labels",
)
_MAP_HINT = (
    "map the columns in the config: bias_in_bios.data.text_field / profession_field / gender_field "
    "(e.g. text_field: Bio)"
)


def _label_set(values, key: str) -> frozenset[str]:
    if isinstance(values, (str, int, float)) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(
            f"bias_in_bios.data.gender_labels.{key} must be a label or a list of labels; got {values!r}"
        )
    return frozenset(_norm_label(v) for v in values)


def _norm_label(value) -> str:
    return str(value).strip().casefold().removesuffix(".0")


@dataclass(frozen=True)
class BiosSource:
    """Where the bios come from and how to read them (mirrors ``bias_in_bios.data`` in the config)."""

    paths: tuple[str, ...]
    """``hf:OWNER/NAME``, or local parquet/jsonl/csv/tsv files / ``asset:NAME/path`` (several files, e.g. a
    data set's train/dev/test files, are read as one)."""
    split: tuple[str, ...] | None = None
    """Hub: the split to read (default ``train``). Local files with a split column: keep only these rows."""
    schema: str = "auto"
    """labhc, find, bug, or auto (recognised from the columns); the ``*_field`` keys override its columns."""
    split_field: str = "split"
    """The split column of local files (used when `split` is set)."""
    text_field: str | None = None
    profession_field: str | None = None
    gender_field: str | None = None
    """Column names of the text, profession and gender (None: the schema's)."""
    gender_labels: tuple[frozenset[str], frozenset[str]] | None = None
    """(male labels, female labels), compared case-insensitively; None: M/F, male/female, man/woman, 0/1 (the
    LabHC convention, 0 = male) and gendered pronouns. Rows with another label are left out."""
    profession_labels: Mapping[str, str] | str | None = None
    """``names`` (the values are profession names), ``labhc`` (indices into LABHC_PROFESSIONS) or a mapping
    {value: name}; None: the schema's (labhc for the LabHC schema, names otherwise)."""

    @property
    def path(self) -> str:
        """The source as one string (tables, logs): the paths joined with ' + '."""
        return " + ".join(self.paths)

    @classmethod
    def from_dict(cls, d: Mapping | str) -> BiosSource:
        if isinstance(d, BiosSource):
            return d
        if isinstance(d, str):
            d = {"path": d}
        unknown = sorted(set(d) - set(_SOURCE_KEYS))
        if unknown or "path" not in d:
            what = f"unknown key(s) {', '.join(unknown)}" if unknown else "no path"
            raise ConfigError(f"bias_in_bios.data: {what}; allowed keys: {', '.join(_SOURCE_KEYS)}")
        raw = d["path"]
        paths = tuple(str(p) for p in raw) if isinstance(raw, (list, tuple)) else (str(raw),)
        if not paths or any(not p for p in paths):
            raise ConfigError(
                "bias_in_bios.data.path must be a file (or a list of files); got an empty value"
            )
        if any(p.startswith(HUB_SCHEME) for p in paths) and len(paths) > 1:
            raise ConfigError(
                "bias_in_bios.data.path: a hub data set (hf:...) cannot be combined with other files"
            )
        schema = d.get("schema") or "auto"
        if schema not in SCHEMAS:
            raise ConfigError(f"bias_in_bios.data.schema must be one of {', '.join(SCHEMAS)}; got {schema!r}")
        split = d.get("split")
        if split is not None:
            split = tuple(str(x) for x in split) if isinstance(split, (list, tuple)) else (str(split),)
        genders = d.get("gender_labels")
        if genders is not None:
            if not isinstance(genders, Mapping) or set(genders) != {"male", "female"}:
                raise ConfigError(
                    "bias_in_bios.data.gender_labels must map male and female to labels, e.g. "
                    f"{{male: [M], female: [F]}}; got {genders!r}"
                )
            male, female = _label_set(genders["male"], "male"), _label_set(genders["female"], "female")
            if male & female:
                raise ConfigError(
                    f"bias_in_bios.data.gender_labels: {', '.join(sorted(male & female))} is both "
                    "male and female"
                )
            genders = (male, female)
        professions = d.get("profession_labels")
        if isinstance(professions, Mapping):
            professions = {
                _norm_label(k): str(v).strip().lower().replace(" ", "_") for k, v in professions.items()
            }
        elif professions not in (None, "names", "labhc"):
            raise ConfigError(
                "bias_in_bios.data.profession_labels must be names, labhc or a mapping "
                f"{{value: profession name}}; got {professions!r}"
            )
        fields = {}
        for key in ("text_field", "profession_field", "gender_field"):
            v = d.get(key)
            if v is not None and (not isinstance(v, str) or not v):
                raise ConfigError(f"bias_in_bios.data.{key} must be a column name; got {v!r}")
            fields[key] = v
        return cls(
            paths,
            split,
            schema,
            str(d.get("split_field") or "split"),
            **fields,
            gender_labels=genders,
            profession_labels=professions,
        )


@dataclass(frozen=True)
class MaskSpec:
    """How profession mentions are hidden (docs/methods.md § Bias in Bios, embedded stand-in)."""

    mode: str = "auto"
    """always, never, or auto (only for the BUG sentences, which always name the profession)."""
    replacement: str = "person"
    """Replaces a singular mention (and any extra word)."""
    plural_replacement: str = "people"
    """Replaces a plural mention (the profession + s)."""
    extra_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Further words to hide per profession (e.g. nurse: [nursing])."""

    @classmethod
    def from_dict(cls, d: Mapping | None) -> MaskSpec:
        d = dict(d or {})
        mode = str(d.get("mode", "auto"))
        if mode not in ("auto", "always", "never"):
            raise ConfigError(f"bias_in_bios.mask.mode must be auto, always or never; got {mode!r}")
        extra = {str(k).lower(): tuple(str(w) for w in v) for k, v in (d.get("extra_words") or {}).items()}
        return cls(
            mode, str(d.get("replacement", "person")), str(d.get("plural_replacement", "people")), extra
        )

    def applies_to(self, schema: str) -> bool:
        return self.mode == "always" or (self.mode == "auto" and schema == "bug")


class SetSizes(NamedTuple):
    ambiguous_per_profession: int
    """Ambiguous training set: this many A-male and this many B-female bios."""
    test_per_group: int
    """Balanced test set: this many bios in each of the four groups."""
    oracle_per_group: int
    """Balanced (oracle) training set: this many bios in each of the four groups."""


class BiasSets(NamedTuple):
    """Frames with columns id, text, profession, gender (M/F), label (0 = A, 1 = B), group (e.g. "A/M")."""

    ambiguous: pd.DataFrame
    test: pd.DataFrame
    oracle: pd.DataFrame

    def stats(self) -> dict:
        return {
            name: frame.group.value_counts().sort_index().to_dict() for name, frame in self._asdict().items()
        }


# --------------------------------------------------------------------------- reading


def _read_local(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        if suffix in (".parquet", ".pq"):
            try:
                return pd.read_parquet(path)
            except ImportError as err:
                raise AssetError(
                    f"{path}: reading parquet needs pyarrow (pip install pyarrow): {err}"
                ) from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read bios ({err})") from None
    raise DataError(f"{path}: unsupported bios file; expected .jsonl, .csv, .tsv or .parquet")


def _read_hub(source: BiosSource) -> pd.DataFrame:
    repo = source.path[len(HUB_SCHEME) :]
    try:
        import datasets
    except ImportError:
        raise AssetError(
            f"{source.path}: reading hub data sets needs the 'datasets' package (pip install datasets); "
            "or download the data and point bias_in_bios.data.path at a local parquet/jsonl copy"
        ) from None
    splits = source.split or ("train",)
    frames = []
    for split in splits:
        try:
            ds = datasets.load_dataset(repo, split=split)
        except Exception as err:  # noqa: BLE001 (network, auth, offline cache miss: all user-facing)
            raise AssetError(
                f"{source.path}: cannot load split '{split}' from the Hugging Face hub "
                f"({type(err).__name__}: "
                f"{err}); offline (HF_HUB_OFFLINE=1) it must be in the local cache, or point "
                "bias_in_bios.data.path at a local parquet/jsonl copy"
            ) from None
        frames.append(ds.to_pandas())
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _find_column(columns: Sequence[str], name: str) -> str | None:
    """`name` among `columns`, exactly or else case-insensitively."""
    if name in columns:
        return name
    folded = [c for c in columns if str(c).casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def detect_schema(columns: Sequence[str], where: str = "bios") -> str:
    cols = [str(c) for c in columns]
    for schema, needed in _SCHEMA_COLUMNS.items():  # labhc before find: a LabHC copy may also have 'text'
        if all(_find_column(cols, c) for c in needed):
            return schema
    wanted = "; ".join(f"{s}: {', '.join(c)}" for s, c in _SCHEMA_COLUMNS.items())
    raise DataError(
        f"{where}: cannot tell the schema from the columns {', '.join(cols)} (known: {wanted}); {_MAP_HINT}"
    )


def _gender(value, labels: tuple[frozenset[str], frozenset[str]] | None = None) -> str | None:
    v = _norm_label(value)
    male, female = labels or (_MALE, _FEMALE)
    return "M" if v in male else "F" if v in female else None


def _profession_name(value, kind: str | Mapping[str, str], where: str) -> str | None:
    if isinstance(kind, Mapping):
        return kind.get(_norm_label(value))
    if kind == "labhc":
        try:
            return LABHC_PROFESSIONS[int(str(value).strip().removesuffix(".0"))]
        except (ValueError, IndexError):
            raise DataError(
                f"{where}: profession {value!r} is not an index 0..27 of LabHC/bias_in_bios; if the "
                "column holds names, set bias_in_bios.data.profession_labels: names"
            ) from None
    return str(value).strip().lower().replace(" ", "_")


def _columns(raw: pd.DataFrame, schema: str, source: BiosSource | None, where: str) -> tuple[str, str, str]:
    """The text, profession and gender columns: the configured *_field keys, else the schema's."""
    cols = [str(c) for c in raw.columns]
    found = []
    for i, key in enumerate(("text_field", "profession_field", "gender_field")):
        configured = getattr(source, key) if source is not None else None
        name = configured or _SCHEMA_COLUMNS[schema][i]
        col = _find_column(cols, name)
        if col is None:
            how = (
                f"bias_in_bios.data.{key} is {configured!r}"
                if configured
                else f"schema '{schema}' reads the {key.removesuffix('_field')} from column '{name}'"
            )
            raise DataError(
                f"{where}: no column '{name}' ({how}); columns are: {', '.join(cols)}; set "
                f"bias_in_bios.data.{key} to one of them"
            )
        found.append(col)
    return found[0], found[1], found[2]


def to_bios_frame(
    raw: pd.DataFrame,
    schema: str = "auto",
    where: str = "bios",
    professions: Sequence[str] | None = None,
    source: BiosSource | None = None,
) -> pd.DataFrame:
    """Normalise a raw frame of any supported schema (or mapped columns) to columns text, profession, gender
    (M/F), schema.

    Rows whose gender cannot be read (e.g. a BUG pronoun that is neither male nor female) are dropped; with
    `professions`, only rows of those professions are kept (and normalised). `source` gives the column and
    label mappings of the config (``bias_in_bios.data.*_field``, ``gender_labels``, ``profession_labels``).
    """
    mapped = source is not None and any((source.text_field, source.profession_field, source.gender_field))
    if schema == "auto":  # mapped columns: the generic schema (profession names, gender labels)
        schema = "find" if mapped else detect_schema(raw.columns, where)
    text_col, prof_col, gender_col = _columns(raw, schema, source, where)
    kind = (
        source.profession_labels
        if source is not None and source.profession_labels is not None
        else ("labhc" if schema == "labhc" else "names")
    )
    names = {v: _profession_name(v, kind, where) for v in raw[prof_col].unique()}
    if isinstance(kind, Mapping) and not any(n is not None for n in names.values()):
        raise DataError(
            f"{where}: no value of column {prof_col} is in bias_in_bios.data.profession_labels; "
            f"values there: {', '.join(sorted(map(str, names))[:10])}"
        )
    profession = raw[prof_col].map(names)
    if professions is not None:
        wanted = [str(p).strip().lower() for p in professions]
        present = {n for n in names.values() if n is not None}
        absent = [p for p in wanted if p not in present]
        if absent:
            raise DataError(
                f"{where}: profession(s) {', '.join(absent)} do not occur in column {prof_col}; "
                f"professions there: {', '.join(sorted(present)[:40])}"
            )
        keep = profession.isin(wanted).to_numpy()
        raw, profession = raw[keep], profession[keep]
    labels = source.gender_labels if source is not None else None
    gender = raw[gender_col].map(lambda v: _gender(v, labels))
    unread = (
        gender.isna() & raw[gender_col].map(lambda v: _norm_label(v) not in ("", "nan", "none")).to_numpy()
    )
    # nothing read, or one gender read and other labels left over: the labels need a mapping (BUG sentences
    # legitimately leave out "they"/"their")
    if len(raw) and (gender.isna().all() or (gender.nunique() == 1 and unread.any() and schema != "bug")):
        raise _gender_error(where, gender_col, raw[gender_col], gender)
    out = pd.DataFrame({
        "text": raw[text_col].map(lambda t: normalize_text("" if t is None else str(t))).to_numpy(),
        "profession": profession.to_numpy(),
        "gender": gender.to_numpy(),
    })  # fmt: skip
    out = out[out.gender.notna() & out.profession.notna() & (out.text.str.len() > 0)].reset_index(drop=True)
    out["schema"] = schema
    return out


def _gender_error(where: str, column: str, values: pd.Series, read: pd.Series) -> DataError:
    shown = ", ".join(sorted({str(v) for v in values.unique()})[:10])
    found = ", ".join(sorted(set(read.dropna()))) or "none"
    return DataError(
        f"{where}: column {column} does not give both genders (read as: {found}; values there: "
        f"{shown}); map its labels: bias_in_bios.data.gender_labels: {{male: [...], female: [...]}}"
    )


def _read_file(uri: str, source: BiosSource, resources_dir: str | Path) -> pd.DataFrame:
    path = require_asset(uri, resources_dir)
    if path.is_dir():
        raise DataError(f"{uri}: expected a file of bios, got a folder")
    raw = _read_local(path)
    if source.split is not None:
        col = _find_column([str(c) for c in raw.columns], source.split_field)
        if col is None:
            raise DataError(
                f"{uri}: bias_in_bios.data.split is set but the file has no '{source.split_field}' "
                f"column (columns: {', '.join(map(str, raw.columns))}); set "
                "bias_in_bios.data.split_field, or split: null to read every row"
            )
        raw = raw[raw[col].astype(str).isin(source.split)]
    return raw


def read_bios(
    source: BiosSource | Mapping | str,
    resources_dir: str | Path = "resources",
    professions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The bios of a source (only `professions`, if given) as columns text, profession, gender (M/F), schema.
    Several files are read one by one (each must have the mapped columns) and concatenated in order."""
    source = BiosSource.from_dict(source)
    if source.paths[0].startswith(HUB_SCHEME):
        return to_bios_frame(
            _read_hub(source), source.schema, where=source.path, professions=professions, source=source
        )
    frames = []
    for uri in source.paths:
        raw = _read_file(uri, source, resources_dir)
        frames.append(to_bios_frame(raw, source.schema, where=uri, source=source))
    bios = pd.concat(frames, ignore_index=True)
    schemas = sorted(set(bios["schema"]))
    if len(schemas) > 1:
        raise DataError(
            f"{source.path}: the files have different schemas ({', '.join(schemas)}); give "
            "bias_in_bios.data.schema or the *_field keys"
        )
    if professions is not None:
        wanted = [str(p).strip().lower() for p in professions]
        absent = [p for p in wanted if p not in set(bios.profession)]
        if absent:
            raise DataError(
                f"{source.path}: profession(s) {', '.join(absent)} do not occur; professions there: "
                f"{', '.join(sorted(set(bios.profession))[:40])}"
            )
        bios = bios[bios.profession.isin(wanted)].reset_index(drop=True)
    return bios


# --------------------------------------------------------------------------- masking


def profession_words(profession: str, extra: Sequence[str] = ()) -> tuple[str, str, tuple[str, ...]]:
    """(singular, plural, extra words) of a profession name such as ``nurse`` or ``software_engineer``."""
    singular = profession.replace("_", " ")
    return singular, singular + "s", tuple(extra)


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def mask_profession(text: str, profession: str, mask: MaskSpec = MaskSpec()) -> str:
    """Replace whole-word mentions of the profession (singular, plural, extra words) with neutral words.

    Case-insensitive; the first letter's case is kept ("Nurses" -> "People").
    """
    singular, plural, extra = profession_words(profession, mask.extra_words.get(profession, ()))
    targets = {singular.casefold(): mask.replacement, plural.casefold(): mask.plural_replacement}
    targets.update({w.casefold(): mask.replacement for w in extra})
    alternatives = "|".join(
        re.escape(w).replace(r"\ ", r"\s+") for w in sorted(targets, key=len, reverse=True)
    )
    pattern = re.compile(rf"\b({alternatives})\b", re.IGNORECASE)

    def replace(m: re.Match) -> str:
        key = " ".join(m.group(0).split()).casefold()
        return _match_case(targets[key], m.group(0))

    return pattern.sub(replace, text)


# --------------------------------------------------------------------------- sets


def prepare_pool(
    bios: pd.DataFrame, professions: Sequence[str], mask: MaskSpec = MaskSpec(), min_chars: int = 20
) -> pd.DataFrame:
    """Bios of the two professions, masked if asked, de-duplicated, with id, label (0 = A, 1 = B) and group.

    A text that occurs with two different (profession, gender) labels is dropped; exact duplicates keep one.
    """
    professions = [str(p).strip().lower() for p in professions]
    if len(professions) != 2 or professions[0] == professions[1]:
        raise ConfigError(f"bias_in_bios.professions must be two different professions; got {professions}")
    known = sorted(set(bios.profession))
    for p in professions:
        if p not in known:
            raise DataError(
                f"profession '{p}' does not occur in the bios; professions there: {', '.join(known)}"
            )
    pool = bios[bios.profession.isin(professions)].copy()
    if len(pool) and mask.applies_to(str(pool["schema"].iloc[0])):
        pool["text"] = [mask_profession(t, p, mask) for t, p in zip(pool.text, pool.profession, strict=True)]
    pool = pool[pool.text.str.len() >= min_chars]
    labels = pool.groupby("text")[["profession", "gender"]].nunique()
    conflicting = set(labels.index[(labels.profession > 1) | (labels.gender > 1)])
    pool = pool[~pool.text.isin(conflicting)].drop_duplicates("text")
    pool = pool.assign(
        id=pool.text.map(doc_id),
        label=(pool.profession == professions[1]).astype(int),
    )
    pool["group"] = pool.label.map({0: "A", 1: "B"}) + "/" + pool.gender
    return pool[["id", "text", "profession", "gender", "label", "group"]].reset_index(drop=True)


def build_sets(pool: pd.DataFrame, sizes: SetSizes, seed: int) -> BiasSets:
    """Draw the test, ambiguous and oracle sets from a prepared pool, deterministically from `seed`.

    Each group is ordered by hash(seed, id); the test set takes the first `test_per_group` of every group;
    both training sets draw from the rest in the same order (so they may share bios, never with the test set).
    """
    for key, value in sizes._asdict().items():
        if int(value) < 1:
            raise ConfigError(f"bias_in_bios.{key} must be at least 1; got {value}")
    prof = dict(zip(pool.label, pool.profession, strict=False))
    need = {
        "A/M": max(sizes.ambiguous_per_profession, sizes.oracle_per_group),
        "B/F": max(sizes.ambiguous_per_profession, sizes.oracle_per_group),
        "A/F": sizes.oracle_per_group,
        "B/M": sizes.oracle_per_group,
    }
    ordered: dict[str, pd.DataFrame] = {}
    for role, gender in GROUPS:
        group = f"{role}/{gender}"
        rows = pool[pool.group == group]
        rows = rows.assign(_rank=rows.id.map(lambda i: hash_unit(seed, "bias_in_bios", i)))
        rows = rows.sort_values(["_rank", "id"]).drop(columns="_rank")
        requested = sizes.test_per_group + need[group]
        if len(rows) < requested:
            name = prof.get(0 if role == "A" else 1, role)
            raise DataError(
                f"bias_in_bios: group {name}/{gender} ({group}) has {len(rows)} bios; requested {requested} "
                f"({sizes.test_per_group} test + {need[group]} training); lower the set sizes or add data"
            )
        ordered[group] = rows
    test = pd.concat([ordered[g].iloc[: sizes.test_per_group] for g in ordered])
    rest = {g: ordered[g].iloc[sizes.test_per_group :] for g in ordered}
    ambiguous = pd.concat([rest[g].iloc[: sizes.ambiguous_per_profession] for g in ("A/M", "B/F")])
    oracle = pd.concat([rest[g].iloc[: sizes.oracle_per_group] for g in ordered])
    return BiasSets(*(frame.reset_index(drop=True) for frame in (ambiguous, test, oracle)))


def group_counts(pool: pd.DataFrame) -> dict[str, int]:
    return {g: int(n) for g, n in pool.group.value_counts().sort_index().items()}
