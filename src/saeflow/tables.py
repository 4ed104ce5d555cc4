"""Result tables: pandas DataFrames written with one helper to CSV + Markdown."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from saeflow.errors import DataError
from saeflow.io import atomic_path, read_json

CORE_COLUMNS = [
    "sae",
    "eval_set",
    "l0",
    "fvu",
    "explained_variance",
    "ce_clean",
    "ce_sae",
    "ce_zero",
    "delta_ce",
    "perplexity_clean",
    "perplexity_sae",
    "ce_loss_score",
    "kl",
    "dead_fraction",
    "dense_fraction",
    "n_tokens",
    # SAELens' run_evals convention (docs/methods.md § Metric conventions)
    "ce_loss_score_saelens",
    "explained_variance_saelens",
    "alias_of",
]


def write_table(
    df: pd.DataFrame,
    csv_path: str | Path,
    md_path: str | Path | None = None,
    *,
    floatfmt: str = ".4g",
    preamble: str = "",
) -> None:
    # 12 significant digits: the 16th moves with the summation order (thread counts differ between a laptop
    # and a cluster job), and two runs of one config must give byte-identical tables
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.12g")
    if md_path is not None:
        with atomic_path(md_path) as tmp:
            tmp.write_text(preamble + df.to_markdown(index=False, floatfmt=floatfmt) + "\n")


def read_sae_columns(paths: Iterable[str | Path]) -> dict[str, Any]:
    """The per-SAE columns other studies publish (saeflow.study.Study.sae_columns), merged: JSON objects of
    name -> number or text."""
    out: dict[str, Any] = {}
    for path in paths:
        data = read_json(path)
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a JSON object of per-SAE columns")
        out.update(data)
    return out


def core_metrics_table(eval_paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per SAE × eval set from the evaluation JSON files, in a stable order."""
    rows = [read_json(p) for p in eval_paths]
    df = pd.DataFrame(rows)
    cols = [c for c in CORE_COLUMNS if c in df.columns]
    return df[cols].sort_values(["sae", "eval_set"]).reset_index(drop=True)
