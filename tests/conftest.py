"""Shared fixtures. `tiny_run`: the real DAG on config/test.yaml, run once per test session; the core's and
every study's end-to-end checks (tests/workflow/, tests/studies/<study>/test_workflow.py) read its outputs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def snakemake_env() -> dict:
    """The environment every workflow test runs Snakemake in: offline hub, no wandb."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}


def snakemake_command(workdir, *args) -> list[str]:
    """This checkout's workflow, run in `workdir`."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
    ] + [*args]


def run_snakemake(workdir, *args, timeout=3000):
    return subprocess.run(
        snakemake_command(workdir, *args),
        check=False,
        capture_output=True,
        text=True,
        env=snakemake_env(),
        timeout=timeout,
    )


TINY_ARGS = (
    "--cores",
    "2",
    "--configfile",
    str(ROOT / "config" / "test.yaml"),
    "--config",
    "resources_dir=resources",
    "results_dir=results",
)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The working directory of one real run of the tiny test config (every study it enables, offline after
    the assets are fetched from the package index)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    out = run_snakemake(workdir, *TINY_ARGS)
    assert out.returncode == 0, out.stderr[-6000:]
    return workdir
