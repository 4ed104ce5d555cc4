"""Two runs' result tables side by side (``python -m saeflow.bench tables RUN_A RUN_B``): per table and
numeric column, how far the second run's values are from the first's (e.g. extraction in bfloat16 vs
float32)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from saeflow.errors import DataError


class ColumnDifference(NamedTuple):
    table: str
    column: str
    n_rows: int
    n_changed: int
    """Cells whose values differ (both NaN counts as equal)."""
    max_abs: float
    """Largest |a − b| over the changed cells with a value on both sides (inf when there is none)."""
    max_rel: float
    """max |a − b| / max(|a|, |b|) over the changed cells (0 when none changed)."""
    at_key: str
    """Key of the row with the largest relative change ('' when none changed)."""


_B = " (second run)"


def _keys(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]


def column_differences(name: str, a: pd.DataFrame, b: pd.DataFrame) -> list[ColumnDifference]:
    """Per numeric column of `a` also in `b`: rows matched on the non-numeric columns when they identify the
    rows of both tables alike, else by position (e.g. a table keyed by a latent id the second run picked
    differently); tables of different lengths are refused (DataError)."""
    keys = _keys(a)
    merged = None
    if keys and keys == _keys(b) and not a.duplicated(keys).any() and not b.duplicated(keys).any():
        merged = a.merge(b, on=keys, how="inner", suffixes=("", _B))
        if len(merged) == len(a) == len(b):
            key_text = merged[keys].apply(lambda row: " / ".join(map(str, row)), axis=1)
        else:
            merged = None
    if merged is None:
        if len(a) != len(b):
            raise DataError(f"table {name}: {len(a)} rows in the first run, {len(b)} in the second")
        merged = pd.concat([a.reset_index(drop=True), b.reset_index(drop=True).add_suffix(_B)], axis=1)
        key_text = pd.Series([f"row {i}" for i in range(len(a))])
        keys = []
    out = []
    for col in a.columns:
        if col in keys or col + _B not in merged or not pd.api.types.is_numeric_dtype(merged[col + _B]):
            continue
        x, y = merged[col].to_numpy(float), merged[col + _B].to_numpy(float)
        changed = ~((x == y) | (np.isnan(x) & np.isnan(y)))
        if not changed.any():
            out.append(ColumnDifference(name, col, len(x), 0, 0.0, 0.0, ""))
            continue
        diff = np.abs(x - y)
        finite = changed & np.isfinite(diff)
        scale = np.maximum(np.abs(x), np.abs(y))
        rel = np.where(changed, diff / np.where(scale > 0, scale, 1.0), 0.0)
        rel = np.where(np.isnan(rel), np.inf, rel)  # a value on one side only
        worst = int(np.argmax(rel))
        out.append(
            ColumnDifference(
                name,
                col,
                len(x),
                int(changed.sum()),
                float(diff[finite].max()) if finite.any() else math.inf,
                float(rel[worst]),
                str(key_text.iloc[worst]),
            )
        )
    return out


def run_differences(run_a: str | Path, run_b: str | Path) -> list[ColumnDifference]:
    """column_differences of every `tables/*.csv` the two results directories share."""
    a_dir, b_dir = Path(run_a) / "tables", Path(run_b) / "tables"
    out = []
    for path in sorted(a_dir.glob("*.csv")):
        other = b_dir / path.name
        if other.is_file():
            out += column_differences(path.stem, pd.read_csv(path), pd.read_csv(other))
    return out
