"""What the papers report: the reference numbers our tables are set beside (docs/methods.md § Reference
numbers).

Each study lists its own references (``Study.references``). Each `Reference` names the tables of ours it
belongs next to by fnmatch patterns over the table's file stem (``results/tables/<stem>.md``), so the summary
works whatever subset of tables a config produces and whatever a study names its table, as long as the name
says what it is (``shift*``, ``boost*``, ...). Our runs use their own model and data (the embedded default is
SmolLM2-135M on BUG sentences), so these are the numbers to compare against in kind, not to match digit for
digit.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Reference:
    """One reported table or finding."""

    key: str
    """Short identifier (stable; used in tests)."""
    title: str
    paper: str
    setting: str
    """Model and data the paper used."""
    tables: tuple[str, ...]
    """fnmatch patterns over our table stems that this reference sits beside."""
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    note: str = ""

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows), columns=list(self.columns))

    def matches(self, table_stem: str) -> bool:
        return any(fnmatch.fnmatchcase(table_stem, pattern) for pattern in self.tables)


def references_for(table_stem: str, references: tuple[Reference, ...]) -> list[Reference]:
    """The references that belong beside our table `table_stem` (file name without .md), in the given
    order."""
    return [ref for ref in references if ref.matches(table_stem)]
