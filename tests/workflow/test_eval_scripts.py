"""The evaluation's small adapters, run as Snakemake runs them: an SAE's evaluations file split per eval set
(scripts/split_eval.py), and an alias SAE's copy of its canonical SAE's file (scripts/alias_sae.py)."""

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

from snakemake.iocontainers import Namedlist

ROOT = Path(__file__).resolve().parents[2]

EVALS = {
    "sae": "a",
    "evals": {
        "general": {"sae": "a", "eval_set": "general", "fvu": 0.25},
        "medical": {"sae": "a", "eval_set": "medical", "fvu": 0.5},
    },
}


def _run(script: str, tmp_path: Path, **snakemake) -> None:
    fake = SimpleNamespace(log=[str(tmp_path / "x.log")], **snakemake)
    runpy.run_path(str(ROOT / "scripts" / script), init_globals={"snakemake": fake}, run_name="__main__")


def test_split_writes_the_eval_sets_row(tmp_path):
    bundle = tmp_path / "a.json"
    bundle.write_text(json.dumps(EVALS))
    out = tmp_path / "a" / "medical.json"
    _run(
        "split_eval.py",
        tmp_path,
        input=Namedlist(fromdict={"json": str(bundle)}),
        output=Namedlist(fromdict={"json": str(out)}),
        wildcards=SimpleNamespace(sae="a", eval_set="medical"),
    )
    assert json.loads(out.read_text()) == {"sae": "a", "eval_set": "medical", "fvu": 0.5}


def test_alias_renames_every_row(tmp_path):
    bundle = tmp_path / "a.json"
    bundle.write_text(json.dumps(EVALS))
    out = tmp_path / "b.json"
    _run(
        "alias_sae.py",
        tmp_path,
        input=Namedlist(fromdict={"json": str(bundle)}),
        output=Namedlist(fromdict={"json": str(out)}),
        wildcards=SimpleNamespace(sae="b"),
        params=SimpleNamespace(canonical="a"),
    )
    alias = json.loads(out.read_text())
    assert alias["sae"] == "b" and alias["alias_of"] == "a"
    assert alias["evals"]["general"] == {"sae": "b", "eval_set": "general", "fvu": 0.25, "alias_of": "a"}
    assert alias["evals"]["medical"]["fvu"] == 0.5
