"""Quality gates, as CI runs them: ruff check, ruff format --check, snakefmt --check and snakemake --lint
must all be clean.

The same commands by hand, from the repository root:
    ruff check src tests scripts
    ruff format --check src tests scripts
    snakefmt --check Snakefile workflow
    snakemake --lint
(ruff's rules and line length are those of [tool.ruff] in pyproject.toml; `ruff format src tests scripts`
fixes a format finding.)
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tool(name):
    """The tool installed beside this interpreter (the project's venv), else on PATH; skip if neither."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def run(*cmd, cwd=ROOT):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    return out.returncode, out.stdout + out.stderr


def lint(snakefile, cwd):
    """`snakemake --lint` of one workflow: (clean?, its report). Clean means exit status 0 *and* no finding:
    the exit status alone is not trusted, since a lint run that fails to parse or reports findings must
    fail."""
    rc, log = run(tool("snakemake"), "--snakefile", str(snakefile), "--lint", cwd=cwd)
    findings = [line for line in log.splitlines() if line.startswith("Lints for")]
    return rc == 0 and not findings, log[-8000:]


def test_ruff():
    rc, log = run(tool("ruff"), "check", "src", "tests", "scripts")
    assert rc == 0, log[-6000:]


def test_ruff_format():
    rc, log = run(tool("ruff"), "format", "--check", "src", "tests", "scripts")
    assert rc == 0, log[-6000:]


def test_snakefmt():
    rc, log = run(tool("snakefmt"), "--check", "Snakefile", "workflow")
    assert rc == 0, log[-6000:]


def test_snakemake_lint():
    clean, log = lint(ROOT / "Snakefile", ROOT)
    assert clean, log


def test_lint_gate_catches_findings(tmp_path):
    """The gate is not vacuous: a rule without log: and conda: directives fails it."""
    (tmp_path / "Snakefile").write_text(
        'def helper(w):\n    return "b.txt"\n\n\nrule a:\n    output:\n        helper,\n    shell:\n        '
        '"touch {output}"\n'
    )
    clean, log = lint(tmp_path / "Snakefile", tmp_path)
    assert not clean, log
