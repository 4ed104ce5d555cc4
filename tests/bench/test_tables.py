"""Two runs' tables compared column by column (saeflow.bench.tables), on hand-made tables."""

import math

import pandas as pd
import pytest

from saeflow.bench.__main__ import main
from saeflow.bench.tables import column_differences, run_differences
from saeflow.errors import DataError


def test_rows_matched_by_key_not_position():
    nan = float("nan")
    a = pd.DataFrame(
        {"sae": ["x", "y", "z"], "eval": ["g", None, "g"], "fvu": [0.5, 0.25, nan], "l0": [32, 32, 8]}
    )
    # same rows in another order (an empty key cell too); y's FVU moves by 0.05 (relative 0.05 / 0.3), z's NaN
    # stays NaN
    b = pd.DataFrame(
        {"sae": ["z", "x", "y"], "eval": ["g", "g", None], "fvu": [nan, 0.5, 0.3], "l0": [8, 32, 32]}
    )
    diffs = {d.column: d for d in column_differences("t", a, b)}
    assert set(diffs) == {"fvu", "l0"}
    assert diffs["l0"].n_changed == 0 and diffs["l0"].max_rel == 0.0
    fvu = diffs["fvu"]
    assert (fvu.n_rows, fvu.n_changed) == (3, 1) and fvu.at_key.startswith("y / ")
    assert fvu.max_abs == pytest.approx(0.05)
    assert fvu.max_rel == pytest.approx(0.05 / 0.3)


def test_value_on_one_side_only_is_an_infinite_change_and_unkeyed_tables_match_by_position():
    a = pd.DataFrame({"v": [1.0, 2.0]})
    b = pd.DataFrame({"v": [1.0, float("nan")]})
    (d,) = column_differences("t", a, b)
    assert d.n_changed == 1 and math.isinf(d.max_rel) and math.isinf(d.max_abs) and d.at_key == "row 1"
    with pytest.raises(DataError, match="t: 2 rows in the first run, 1 in the second"):
        column_differences("t", a, b.iloc[:1])


def test_rows_whose_keys_changed_are_matched_by_position():
    # the second run picked another latent for finding "b": keyed rows no longer pair up, positions still do
    a = pd.DataFrame({"finding": ["a", "b"], "latent": ["L1", "L2"], "auroc": [0.8, 0.7]})
    b = pd.DataFrame({"finding": ["a", "b"], "latent": ["L1", "L9"], "auroc": [0.8, 0.77]})
    (d,) = column_differences("findings", a, b)
    assert (d.column, d.n_changed, d.at_key) == ("auroc", 1, "row 1")
    assert d.max_abs == pytest.approx(0.07)


def test_cli_reads_both_results_directories(tmp_path, capsys):
    for run, value in (("a", 2.0), ("b", 2.5)):
        (tmp_path / run / "tables").mkdir(parents=True)
        table = pd.DataFrame({"sae": ["g"], "ce": [value]})
        table.to_csv(tmp_path / run / "tables" / "core.csv", index=False)
    assert [d.max_rel for d in run_differences(tmp_path / "a", tmp_path / "b")] == [pytest.approx(0.2)]
    main(["tables", str(tmp_path / "a"), str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert "bench=tables table=core rows=1 numeric_columns=1 changed=1" in out
    assert "column=ce changed_cells=1 max_abs=0.5 max_rel=0.2 at='g'" in out


def test_cli_without_shared_tables_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tables", str(tmp_path / "a"), str(tmp_path / "b")])
    assert exit_info.value.code == 1
    assert (
        capsys.readouterr().err.strip()
        == f"saeflow error: no tables/*.csv in both {tmp_path / 'a'} and {tmp_path / 'b'}"
    )
