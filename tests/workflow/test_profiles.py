"""Execution profiles: every config dry-runs through the SLURM profile (no sbatch needed) and the workstation
one."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import snakemake_command, snakemake_env

from saeflow.config import load_config_files

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "workflow" / "profiles"
PAPER = sorted((ROOT / "config" / "paper").glob("*.yaml"))
# every config: the embedded default (None) and each overlay on top of it in config/ and config/paper/
OVERLAYS = sorted(p for p in (ROOT / "config").glob("*.yaml") if p.name not in ("config.yaml", "schema.yaml"))
CONFIGS = [None, *OVERLAYS, *PAPER]
# rules that run the LM or an SAE on config["device"]: they declare resources gpu=config["gpu"]
GPU_RULES = {
    "extract_activations",
    "train_sae",
    "evaluate_sae",
    "evaluate_baseline",
    "bib_activations",
    "bib_latents",
    "concept_metrics",
}
RULE_FILES = sorted((ROOT / "workflow" / "rules").rglob("*.smk"))


def dry_run(workdir, profile, configfile=None):
    env = snakemake_env()
    cmd = [
        *snakemake_command(workdir),
        "--profile",
        str(PROFILES / profile),
        "-n",
    ]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def job_resources(log):
    """{rule: [resources line of each job]} from a dry-run's job listing."""
    jobs, rule = {}, None
    for line in log.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            jobs.setdefault(rule, []).append(line.strip())
    return jobs


def test_slurm_profile_is_for_the_plugin():
    profile = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["rerun-incomplete"] and profile["retries"] >= 1 and profile["jobs"] >= 1
    assert profile["cores"] and profile["max-threads"]  # rules with threads: workflow.cores need --cores
    defaults = profile["default-resources"]
    assert defaults["slurm_partition"] == "cpu" and defaults["gpu_partition"] == "gpu"
    # the rules name their partition themselves (SIZES.partition()): no per-rule line for a new study to add
    assert not any("slurm_partition" in (r or {}) for r in (profile.get("set-resources") or {}).values())


def test_device_rules_ask_for_gpus():
    """A rule that hands config["device"] (cuda in the paper configs) to its script must also ask for the
    config's GPUs and for the partition that has them, or on a cluster it lands on a node without one.
    (Static, so it covers the rules of studies that no config here enables.)"""
    checked = set()
    for smk in RULE_FILES:
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.MULTILINE):
            m = re.match(r"rule (\w+):", block)
            if m and 'device=config["device"]' in block:
                rule = m.group(1)
                checked.add(rule)
                assert 'gpu=config["gpu"]' in block, (
                    f"rule {rule} ({smk.name}) uses the device, declares no gpu"
                )
                assert "slurm_partition=SIZES.partition()" in block, (
                    f"rule {rule} ({smk.name}) asks for GPUs without slurm_partition=SIZES.partition()"
                )
    assert GPU_RULES <= checked, GPU_RULES - checked


@pytest.mark.parametrize("configfile", CONFIGS, ids=lambda c: c.name if c else "config.yaml")
def test_slurm_dry_run(tmp_path, configfile):
    log = dry_run(tmp_path, "slurm", configfile)
    assert "This was a dry-run" in log
    jobs = job_resources(log)
    config = load_config_files(ROOT, *([str(configfile.relative_to(ROOT))] if configfile else []))
    if (
        config.get("ssae") is not None and config.get("bias_in_bios") is not None
    ):  # the language-model studies
        missing = GPU_RULES - set(jobs)
        assert not missing, f"GPU rules missing from the job list: {missing}"
    overlay = yaml.safe_load(configfile.read_text()) if configfile else {}
    gpus = overlay.get("gpu", 0)  # the paper configs set gpu: 1, the embedded default gpu: 0
    if configfile in PAPER:
        assert gpus == 1, f"{configfile.name} should set gpu: 1"
    # every job of a GPU rule, and of any other rule that declares a gpu resource (a new study's), asks for
    # the config's GPUs, on the GPU partition when there are any
    partition = "gpu" if gpus else "cpu"
    for rule, lines in jobs.items():
        for res in lines:
            if rule in GPU_RULES or re.search(r"\bgpu=", res):
                assert f"slurm_partition={partition}" in res and re.search(rf"\bgpu={gpus}\b", res), (
                    rule,
                    res,
                )


@pytest.mark.parametrize("configfile", CONFIGS, ids=lambda c: c.name if c else "config.yaml")
def test_default_profile_dry_run(tmp_path, configfile):
    assert "This was a dry-run" in dry_run(tmp_path, "default", configfile)


FAKE_SLURM = {
    # sbatch records its arguments and answers a job id; sacct says the job completed (or names an account)
    "sbatch": 'echo "$@" >> "$FAKE_SLURM_LOG"\necho 4242\n',
    "sacct": 'case "$*" in *Account*) echo testacct ;; *) echo "4242|COMPLETED" ;; esac\n',
    "sacctmgr": "echo testacct\n",
    "squeue": "exit 0\n",
    "sinfo": "exit 0\n",
}


def test_slurm_submission_of_a_gpu_job(tmp_path):
    """A real (not dry) run through the profile with stand-in SLURM commands: the sbatch call of a GPU rule.

    A dry-run cannot see everything: rules with `threads: workflow.cores` fail at parse time when no --cores
    is set, which only a real run shows. The job never runs, so Snakemake then reports its missing output.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKE_SLURM.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    paper = ROOT / "config" / "paper" / "shift_pythia70m.yaml"
    cfg = yaml.safe_load(paper.read_text())
    results, model, layer = cfg["results_dir"], cfg["model"]["name"], cfg["model"]["layer"]
    # the extraction job's inputs, as if built already
    for f in ("general.train.jsonl", "general.heldout.jsonl", "general.stats.json"):
        (tmp_path / results / "texts").mkdir(parents=True, exist_ok=True)
        (tmp_path / results / "texts" / f).write_text("")
    (tmp_path / "resources" / "models" / model).mkdir(parents=True)
    (tmp_path / "resources" / "models" / model / "prepared.json").write_text("{}")
    target = f"{results}/activations/{model}/L{layer}/general.train/manifest.json"
    log = tmp_path / "sbatch.txt"
    env = {
        **snakemake_env(),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_SLURM_LOG": str(log),
    }
    cmd = [
        *snakemake_command(tmp_path),
        "--profile",
        str(PROFILES / "slurm"),
        "--configfile",
        str(paper),
        "--retries",
        "0",
        "--latency-wait",
        "1",
        "--slurm-init-seconds-before-status-checks",
        "1",
        target,
    ]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert log.exists(), (out.stdout + out.stderr)[-3000:]
    call = log.read_text()
    assert "rule_extract_activations" in call
    for flag in ("-p gpu", "--gpus=1", "--cpus-per-task=8", "--mem 64000", "-t 720"):
        assert flag in call, (flag, call[:600])
