"""RecBole atomic files (`.inter`, `.item`, `.user`) in; per-user chronological item sequences, the
leave-one-out split by time and item metadata (title words, year/decade, genres) out.

An atomic file is tab-separated text whose first line names each column as ``field:type``; types are
``token``, ``float``, ``token_seq`` and ``float_seq`` (sequences are space-separated). Items are re-indexed
1..n_items in order of first appearance in the interaction file (kept users only); index 0 is padding.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from saeflow.errors import DataError

ATOMIC_TYPES = ("token", "float", "token_seq", "float_seq")
PAD = 0
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "in",
        "on",
        "to",
        "for",
        "with",
        "from",
        "at",
        "by",
        "is",
        "it",
        "la",
        "le",
        "les",
        "de",
        "el",
        "der",
        "die",
        "das",
    ]
)


class AtomicTable(NamedTuple):
    """One atomic file: column name → values (str, float, tuple[str, ...] or tuple[float, ...])."""

    path: Path
    types: dict[str, str]
    columns: dict[str, list]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def _convert(value: str, typ: str, path: Path, line: int, name: str):
    try:
        if typ == "token":
            return value
        if typ == "token_seq":
            return tuple(value.split())
        if typ == "float":
            return float(value) if value != "" else float("nan")
        return tuple(float(v) for v in value.split())
    except ValueError:
        raise DataError(f"{path}:{line}: column '{name}' ({typ}) holds a non-number: {value!r}") from None


def read_atomic(path: str | Path) -> AtomicTable:
    """Read one RecBole atomic file; DataError naming the file (and line) on a malformed header or row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"atomic file {path} does not exist")
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n")
        if not header:
            raise DataError(f"{path}: empty file (expected a 'field:type' header)")
        names, types = [], []
        for col in header.split("\t"):
            name, sep, typ = col.partition(":")
            if not sep or not name or typ not in ATOMIC_TYPES:
                raise DataError(
                    f"{path}: header column {col!r} is not 'field:type' with type in {ATOMIC_TYPES}"
                )
            names.append(name)
            types.append(typ)
        columns: dict[str, list] = {n: [] for n in names}
        for line_no, line in enumerate(fh, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != len(names):
                raise DataError(f"{path}:{line_no}: {len(parts)} fields; the header names {len(names)}")
            for name, typ, value in zip(names, types, parts):
                columns[name].append(_convert(value, typ, path, line_no, name))
    return AtomicTable(path, dict(zip(names, types)), columns)


def _column(table: AtomicTable, name: str) -> list:
    if name not in table.columns:
        raise DataError(f"{table.path}: no column '{name}' (columns: {', '.join(table.columns)})")
    return table.columns[name]


@dataclass(frozen=True)
class RecDataConfig:
    """Which columns hold what, and which users are kept."""

    user_field: str = "user_id"
    """Column of the user token in `.inter`."""
    item_field: str = "item_id"
    """Column of the item token in `.inter` and `.item`."""
    time_field: str = "timestamp"
    """Column ordering each user's interactions (ties keep file order)."""
    min_user_interactions: int = 5
    """Users with fewer interactions are dropped (at least 3 are needed for leave-one-out)."""


@dataclass(frozen=True)
class Interactions:
    """Per-user chronological item sequences, items as indices 1..n_items (0 = padding)."""

    users: tuple[str, ...]
    """Raw user token of each sequence."""
    sequences: tuple[tuple[int, ...], ...]
    """Item indices of each user, oldest first."""
    item_tokens: tuple[str, ...]
    """Raw item token of each index (index 0 is '[PAD]')."""

    @property
    def n_items(self) -> int:
        return len(self.item_tokens) - 1

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences)


def load_interactions(inter_path: str | Path, cfg: RecDataConfig = RecDataConfig()) -> Interactions:
    """Sequences from a `.inter` file, sorted by time within each user (stable: ties keep file order)."""
    if cfg.min_user_interactions < 3:
        raise DataError(
            f"min_user_interactions must be at least 3 for leave-one-out; got {cfg.min_user_interactions}"
        )
    table = read_atomic(inter_path)
    users, items, times = (_column(table, f) for f in (cfg.user_field, cfg.item_field, cfg.time_field))
    if table.types[cfg.time_field] != "float":
        raise DataError(
            f"{table.path}: column '{cfg.time_field}' must be float; it is {table.types[cfg.time_field]}"
        )
    per_user: dict[str, list[tuple[float, int, str]]] = {}
    for row, (u, i, t) in enumerate(zip(users, items, times)):
        per_user.setdefault(u, []).append((t, row, i))
    kept = {u for u, rows in per_user.items() if len(rows) >= cfg.min_user_interactions}
    index: dict[str, int] = {}
    for u, i in zip(users, items):
        if u in kept and i not in index:
            index[i] = len(index) + 1
    kept_users, seqs = [], []
    for u, rows in per_user.items():
        if u in kept:
            rows.sort(key=lambda r: (r[0], r[1]))
            kept_users.append(u)
            seqs.append(tuple(index[i] for _, _, i in rows))
    if not seqs:
        raise DataError(f"{table.path}: no user has {cfg.min_user_interactions} or more interactions")
    tokens = ["[PAD]"] + sorted(index, key=index.__getitem__)
    return Interactions(tuple(kept_users), tuple(seqs), tuple(tokens))


class Split(NamedTuple):
    """Leave-one-out split by time: the last item of each user is the test target, the second-to-last the
    validation target; the model trains on what comes before."""

    train: list[list[int]]
    """seq[:-2]: training sequences (also the validation histories)."""
    valid_targets: list[int]
    """seq[-2]."""
    test_histories: list[list[int]]
    """seq[:-1]."""
    test_targets: list[int]
    """seq[-1]."""


def leave_one_out(sequences) -> Split:
    """Split every sequence (at least 3 items) by time."""
    bad = [i for i, s in enumerate(sequences) if len(s) < 3]
    if bad:
        raise DataError(
            f"leave_one_out: {len(bad)} sequences have fewer than 3 items (first: index {bad[0]})"
        )
    return Split(
        train=[list(s[:-2]) for s in sequences],
        valid_targets=[int(s[-2]) for s in sequences],
        test_histories=[list(s[:-1]) for s in sequences],
        test_targets=[int(s[-1]) for s in sequences],
    )


@dataclass(frozen=True)
class MetaConfig:
    """Columns of the `.item` file holding the metadata (the ML-100K names by default)."""

    title_field: str = "movie_title"
    year_field: str = "release_year"
    genre_field: str = "class"


@dataclass(frozen=True)
class ItemMeta:
    """Metadata per item index (index 0 = padding: empty); items absent from the `.item` file are empty
    too."""

    title_words: tuple[tuple[str, ...], ...]
    """Lower-cased title words (letters/digits, stop words and one-letter words removed)."""
    years: tuple[int | None, ...]
    genres: tuple[tuple[str, ...], ...]

    def decade(self, item: int) -> str | None:
        y = self.years[item]
        return None if y is None else f"{y // 10 * 10}s"

    def terms(self, item: int) -> list[str]:
        """The item's metadata terms: ``genre:X``, ``decade:1990s``, ``word:x``."""
        out = [f"genre:{g}" for g in self.genres[item]]
        d = self.decade(item)
        if d:
            out.append(f"decade:{d}")
        return out + [f"word:{w}" for w in self.title_words[item]]

    @property
    def genre_names(self) -> list[str]:
        return sorted({g for gs in self.genres for g in gs})


def title_words(title: str) -> tuple[str, ...]:
    words = re.findall(r"[a-z0-9]+", title.lower())
    return tuple(w for w in words if len(w) > 1 and w not in _STOPWORDS)


def _year(value) -> int | None:
    if isinstance(value, float):
        return None if math.isnan(value) else int(value)
    value = str(value).strip()
    if not value:
        return None
    m = re.fullmatch(r"(\d{4})(\.0)?", value)
    return int(m.group(1)) if m else None  # 'unknown' (ML-100K spells it 'unkonwn') = missing


def load_item_meta(
    item_path: str | Path,
    interactions: Interactions,
    cfg: MetaConfig = MetaConfig(),
    item_field: str = "item_id",
) -> ItemMeta:
    """Metadata aligned with `interactions.item_tokens`."""
    table = read_atomic(item_path)
    ids = _column(table, item_field)
    titles, years, genres = (_column(table, f) for f in (cfg.title_field, cfg.year_field, cfg.genre_field))
    by_token = {}
    for tok, t, y, g in zip(ids, titles, years, genres):
        t = " ".join(t) if isinstance(t, tuple) else str(t)
        g = g if isinstance(g, tuple) else tuple(str(g).split())
        by_token[tok] = (title_words(t), _year(y), tuple(x for x in g if x != "unknown"))
    empty = ((), None, ())
    rows = [empty] + [by_token.get(tok, empty) for tok in interactions.item_tokens[1:]]
    return ItemMeta(tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows))


def load_user_table(user_path: str | Path) -> AtomicTable:
    """The `.user` file as read (user features are not used by the study; kept for reports)."""
    return read_atomic(user_path)
