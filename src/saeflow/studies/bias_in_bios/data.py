"""Bias-in-Bios-style data: bios with a profession and a gender, and the SHIFT train/test sets built from them.

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


@dataclass(frozen=True)
class BiosSource:
    """Where the bios come from (mirrors ``bias_in_bios.data`` in the config)."""

    path: str
    """``hf:OWNER/NAME``, a local parquet/jsonl/csv file, or ``asset:NAME/path``."""
    split: str | None = None
    """Hub: the split to read (default ``train``). Local files with a ``split`` column: keep only these rows."""
    schema: str = "auto"
    """labhc, find, bug, or auto (recognised from the columns)."""

    @classmethod
    def from_dict(cls, d: Mapping | str) -> BiosSource:
        if isinstance(d, BiosSource):
            return d
        if isinstance(d, str):
            d = {"path": d}
        unknown = sorted(set(d) - {"path", "split", "schema"})
        if unknown or "path" not in d:
            raise ConfigError(f"bias_in_bios.data: expected keys path, split, schema; got {sorted(d)}")
        schema = d.get("schema") or "auto"
        if schema not in SCHEMAS:
            raise ConfigError(f"bias_in_bios.data.schema must be one of {', '.join(SCHEMAS)}; got {schema!r}")
        return cls(str(d["path"]), d.get("split"), schema)


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
        return cls(mode, str(d.get("replacement", "person")), str(d.get("plural_replacement", "people")), extra)

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
        return {name: frame.group.value_counts().sort_index().to_dict() for name, frame in self._asdict().items()}


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
                raise AssetError(f"{path}: reading parquet needs pyarrow (pip install pyarrow): {err}") from None
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
    split = source.split or "train"
    try:
        ds = datasets.load_dataset(repo, split=split)
    except Exception as err:  # noqa: BLE001 (network, auth, offline cache miss: all user-facing)
        raise AssetError(
            f"{source.path}: cannot load split '{split}' from the Hugging Face hub ({type(err).__name__}: "
            f"{err}); offline (HF_HUB_OFFLINE=1) it must be in the local cache, or point "
            "bias_in_bios.data.path at a local parquet/jsonl copy"
        ) from None
    return ds.to_pandas()


def detect_schema(columns: Sequence[str], where: str = "bios") -> str:
    cols = set(columns)
    for schema, needed in _SCHEMA_COLUMNS.items():  # labhc before find: a LabHC copy may also have 'text'
        if set(needed) <= cols:
            return schema
    wanted = "; ".join(f"{s}: {', '.join(c)}" for s, c in _SCHEMA_COLUMNS.items())
    raise DataError(f"{where}: cannot tell the schema from the columns {sorted(cols)}; expected one of ({wanted})")


def _gender(value) -> str | None:
    v = str(value).strip().casefold()
    v = v.removesuffix(".0")
    return "M" if v in _MALE else "F" if v in _FEMALE else None


def _profession_name(value, schema: str, where: str) -> str:
    if schema == "labhc":
        try:
            return LABHC_PROFESSIONS[int(value)]
        except (ValueError, IndexError):
            raise DataError(f"{where}: profession {value!r} is not an index 0..27 of LabHC/bias_in_bios") from None
    return str(value).strip().lower().replace(" ", "_")


def to_bios_frame(raw: pd.DataFrame, schema: str = "auto", where: str = "bios",
                  professions: Sequence[str] | None = None) -> pd.DataFrame:
    """Normalise a raw frame of any supported schema to columns text, profession, gender (M/F), schema.

    Rows whose gender cannot be read (e.g. a BUG pronoun that is neither male nor female) are dropped; with
    `professions`, only rows of those professions are kept (and normalised).
    """
    if schema == "auto":
        schema = detect_schema(raw.columns, where)
    text_col, prof_col, gender_col = _SCHEMA_COLUMNS[schema]
    missing = [c for c in (text_col, prof_col, gender_col) if c not in raw.columns]
    if missing:
        raise DataError(f"{where}: schema '{schema}' needs column(s) {', '.join(missing)}; "
                        f"columns are: {', '.join(map(str, raw.columns))}")
    names = {v: _profession_name(v, schema, where) for v in raw[prof_col].unique()}
    profession = raw[prof_col].map(names)
    if professions is not None:
        wanted = [str(p).strip().lower() for p in professions]
        absent = [p for p in wanted if p not in set(names.values())]
        if absent:
            raise DataError(f"{where}: profession(s) {', '.join(absent)} do not occur; professions there: "
                            f"{', '.join(sorted(set(names.values())))}")
        keep = profession.isin(wanted).to_numpy()
        raw, profession = raw[keep], profession[keep]
    out = pd.DataFrame({
        "text": raw[text_col].map(normalize_text).to_numpy(),
        "profession": profession.to_numpy(),
        "gender": raw[gender_col].map(_gender).to_numpy(),
    })  # fmt: skip
    out = out[out.gender.notna() & (out.text.str.len() > 0)].reset_index(drop=True)
    out["schema"] = schema
    return out


def read_bios(source: BiosSource | Mapping | str, resources_dir: str | Path = "resources",
              professions: Sequence[str] | None = None) -> pd.DataFrame:
    """The bios of a source (only `professions`, if given) as columns text, profession, gender (M/F), schema."""
    source = BiosSource.from_dict(source)
    if source.path.startswith(HUB_SCHEME):
        raw = _read_hub(source)
    else:
        path = require_asset(source.path, resources_dir)
        if path.is_dir():
            raise DataError(f"{source.path}: expected a file of bios, got a folder")
        raw = _read_local(path)
        if source.split is not None:
            if "split" not in raw.columns:
                raise DataError(f"{source.path}: bias_in_bios.data.split is set but the file has no 'split' column")
            raw = raw[raw["split"].astype(str) == source.split]
    return to_bios_frame(raw, source.schema, where=source.path, professions=professions)


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
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(targets, key=len, reverse=True))
    pattern = re.compile(rf"\b({alternatives})\b", re.IGNORECASE)

    def replace(m: re.Match) -> str:
        key = " ".join(m.group(0).split()).casefold()
        return _match_case(targets[key], m.group(0))

    return pattern.sub(replace, text)


# --------------------------------------------------------------------------- sets


def prepare_pool(bios: pd.DataFrame, professions: Sequence[str], mask: MaskSpec = MaskSpec(),
                 min_chars: int = 20) -> pd.DataFrame:
    """Bios of the two professions, masked if asked, de-duplicated, with id, label (0 = A, 1 = B) and group.

    A text that occurs with two different (profession, gender) labels is dropped; exact duplicates keep one.
    """
    professions = [str(p).strip().lower() for p in professions]
    if len(professions) != 2 or professions[0] == professions[1]:
        raise ConfigError(f"bias_in_bios.professions must be two different professions; got {professions}")
    known = sorted(set(bios.profession))
    for p in professions:
        if p not in known:
            raise DataError(f"profession '{p}' does not occur in the bios; professions there: {', '.join(known)}")
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
