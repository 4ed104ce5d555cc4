"""Quality gates, as CI runs them: ruff, snakefmt --check and snakemake --lint must all be clean."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tool(name):
    """The tool installed beside this interpreter (the project's venv), else on PATH; skip if neither."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def run(*cmd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    return out.returncode, (out.stdout + out.stderr)[-6000:]


def test_ruff():
    rc, log = run(tool("ruff"), "check", "src", "tests", "scripts")
    assert rc == 0, log


def test_snakefmt():
    rc, log = run(tool("snakefmt"), "--check", ".")
    assert rc == 0, log


@pytest.mark.xfail(reason="known lint debt tracked in issue 6: helper functions still live beside rules in "
                   "five .smk files and the SSAE rules lack conda: directives", strict=False)
def test_snakemake_lint():
    rc, log = run(tool("snakemake"), "--lint")
    assert rc == 0, log
