"""envs/*.yaml pin exactly what pyproject.toml pins (dependencies and the runtime extras)."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pip_requirements(env_file):
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return {r for r in pip if not r.startswith("-")}


def test_conda_env_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["hub"])
    env = yaml.safe_load((ROOT / "envs" / "saeflow.yaml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert _pip_requirements(ROOT / "envs" / "saeflow.yaml") == expected
