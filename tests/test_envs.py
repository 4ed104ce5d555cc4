"""The conda environment: envs/saeflow.yaml pins exactly what pyproject.toml pins, and every rule uses it.

No conda here: `snakemake --sdm conda` is dry-run against a stand-in `conda` (creating the environment needs
conda and the network; see README "Running on a cluster").
"""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml
from conftest import snakemake_command, snakemake_env
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / "envs" / "saeflow.yaml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RULE_FILES = sorted((ROOT / "workflow" / "rules").rglob("*.smk"))


def pins(requirements):
    """{canonical name: specifier} of requirement strings; a name listed twice is an error."""
    out = {}
    for line in requirements:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in out, f"{req.name} is listed twice"
        out[name] = str(req.specifier)
    return out


def env_spec():
    return yaml.safe_load(ENV_FILE.read_text())


def env_pip():
    deps = env_spec()["dependencies"]
    pip = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "envs/saeflow.yaml needs exactly one pip: section"
    return [r for r in pip[0] if not r.startswith("-")]  # options such as --extra-index-url are not pins


def env_conda_packages():
    return {
        re.split(r"[=<>!]", d, maxsplit=1)[0]: d for d in env_spec()["dependencies"] if isinstance(d, str)
    }


def test_pip_pins_match_pyproject():
    project = PYPROJECT["project"]
    expected = pins(project["dependencies"] + project["optional-dependencies"]["hub"])
    got = pins(env_pip())
    drift = {
        n: (expected.get(n), got.get(n))
        for n in expected.keys() | got.keys()
        if expected.get(n) != got.get(n)
    }
    assert not drift, f"envs/saeflow.yaml drifted from pyproject.toml {{name: (pyproject, env)}}: {drift}"


def test_every_pin_is_exact_except_pyyaml():
    """Same config + seed => same numbers needs the same packages: `==` pins (pyyaml is the one range)."""
    loose = [line for line in env_pip() if "==" not in line and not line.startswith("pyyaml")]
    assert not loose, loose


def test_python_version_matches_pyproject():
    conda = env_conda_packages()
    assert "pip" in conda, "the environment needs pip for its pip: section"
    python = conda.get("python", "")
    m = re.fullmatch(r"python=(\d+)\.(\d+)", python)
    assert m, f"envs/saeflow.yaml should pin python=X.Y; got '{python}'"
    version = f"{m.group(1)}.{m.group(2)}"
    assert version in SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{m.group(1)}{m.group(2)}"


def rule_blocks(text):
    """(name, body) of every rule/checkpoint of a .smk file (the body ends at the next top-level line)."""
    starts = list(re.finditer(r"^(?:rule|checkpoint) (\w+):\n", text, flags=re.MULTILINE))
    for m in starts:
        end = re.search(r"^\S", text[m.end() :], flags=re.MULTILINE)
        yield m.group(1), text[m.end() : m.end() + end.start() if end else len(text)]


def test_every_rule_runs_in_the_saeflow_env():
    rules = 0
    for smk in RULE_FILES:
        for name, body in rule_blocks(smk.read_text()):
            if not re.search(r"^    (script|shell|run|notebook|wrapper):", body, flags=re.MULTILINE):
                continue  # a target-only rule runs nothing
            rules += 1
            m = re.search(r'^    conda:\n\s+"([^"]+)"', body, flags=re.MULTILINE)
            assert m, f"rule {name} ({smk.name}) has no conda: directive"
            assert (smk.parent / m.group(1)).resolve() == ENV_FILE.resolve(), (name, m.group(1))
    assert rules >= 20, f"found only {rules} rules: is the parser still right?"


def test_conda_dry_run_plans_the_one_environment(tmp_path):
    """`snakemake -n --sdm conda` resolves every rule's environment file. Without conda, a stand-in answers
    the version and configuration queries Snakemake makes before planning (a dry-run creates nothing)."""
    env = snakemake_env()
    if shutil.which("conda") is None:
        fake = tmp_path / "bin" / "conda"
        fake.parent.mkdir()
        fake.write_text(
            "#!/bin/sh\n"
            'case "$*" in\n'
            '  *--version*) echo "conda 24.7.1" ;;\n'
            '  *info*) echo \'{"conda_version": "24.7.1", "platform": "linux-64", "envs_dirs": [], '
            '"pkgs_dirs": [], "root_prefix": "/nonexistent", "conda_prefix": "/nonexistent"}\' ;;\n'
            '  *config*) echo \'{"get": {"channel_priority": "strict"}}\' ;;\n'
            "  *) exit 1 ;;\n"
            "esac\n"
        )
        fake.chmod(0o755)
        env["PATH"] = f"{fake.parent}{os.pathsep}{env['PATH']}"
    work = tmp_path / "work"
    work.mkdir()
    cmd = [
        *snakemake_command(work),
        "-n",
        "--sdm",
        "conda",
        "--cores",
        "2",
    ]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    planned = re.findall(r"Conda environment (\S+) will be created", log)
    # core and study rule files name the one env file by different relative paths; it is one environment
    assert {Path(p).resolve() for p in planned} == {ENV_FILE.resolve()}, planned
