"""saeflow.cluster: job sizes by kind and scale, capped at the site; the startup check against stand-in SLURM
commands."""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.resources import Resources
from snakemake.settings.types import ResourceSettings

from saeflow import cluster
from saeflow.cluster import JOB_KINDS, JobSizes, Site, SiteLimitError

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"extraction": {"train_tokens": 6000}}
PAPER = {"extraction": {"train_tokens": 50_000_000}}


def test_scale_follows_the_extraction_budget():
    assert cluster.scale(SMALL) == "small"
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert cluster.scale(default) == "small"  # the embedded default (1M tokens of a 135M model)
    assert cluster.scale(PAPER) == "paper"
    assert cluster.scale({}) == "small"


def test_every_kind_has_both_scales_and_paper_is_not_smaller():
    for kind, sizes in JOB_KINDS.items():
        assert set(sizes) == set(cluster.SCALES), kind
        assert (
            sizes["paper"].mem_mb >= sizes["small"].mem_mb
            and sizes["paper"].runtime >= sizes["small"].runtime
        )


def test_uncapped_requests_grow_with_the_attempt():
    sizes = JobSizes(PAPER)
    assert [sizes.mem_request("train", a) for a in (1, 2, 3)] == [64000, 128000, 192000]
    assert sizes.runtime_request("extract", 2) == 2 * 720


def test_requests_are_capped_at_the_site():
    sizes = JobSizes(SMALL, Site(cpus=2, mem_mb=20000, runtime=100))
    assert sizes.mem_request("train", 1) == 4000
    assert [sizes.mem_request("train", a) for a in (2, 3)] == [8000, 12000]
    assert sizes.runtime_request("train", 1) == 100  # 120 min capped at the site's 100
    paper = JobSizes(PAPER, Site(mem_mb=20000))
    assert paper.mem_request("train", 1) == 20000  # an estimate above the node still gets one try at the cap


def test_a_retry_that_cannot_grow_fails_with_one_line_naming_the_resource():
    sizes = JobSizes(PAPER, Site(mem_mb=20000))
    with pytest.raises(SiteLimitError) as err:
        sizes.mem_request("train", 2, "train_sae")
    msg = str(err.value)
    assert "\n" not in msg and "rule train_sae" in msg and "max_mem_mb=20000" in msg and "lower mem_mb" in msg
    # a retry that can still grow is allowed, up to the cap
    small = JobSizes(SMALL, Site(mem_mb=10000))
    assert [small.mem_request("train", a) for a in (1, 2, 3)] == [4000, 8000, 10000]
    with pytest.raises(SiteLimitError):
        small.mem_request("train", 4)


def test_callables_take_what_snakemake_passes():
    sizes = JobSizes(SMALL, Site(mem_mb=20000))
    assert sizes.mem_mb("extract")({}, attempt=2, rulename="extract_activations") == 8000
    assert sizes.runtime("table")({}, attempt=1) == 5
    # a job doing three pieces of a kind's work (an SAE evaluated on three eval sets) asks for three times
    three = sizes.runtime("lm_eval", units=lambda wildcards: len(wildcards["sets"]))
    assert three({"sets": ["a", "b", "c"]}, attempt=2) == 2 * 3 * 60
    assert JobSizes(SMALL, Site(runtime=100)).runtime("lm_eval", units=lambda w: 3)({}, attempt=1) == 100
    with pytest.raises(Exception, match="unknown job kind 'nope'"):
        sizes.mem_mb("nope")


def test_site_from_snakemakes_own_settings():
    """The two site values as Snakemake parses them from the profile (--max-threads, --default-resources)."""
    defaults = Resources.parse(
        ["slurm_partition='cpu'", "max_mem_mb=20000", "max_runtime=600", "mem_mb=4000"],
        allow_expressions=True,
        defaults="full",
    )
    workflow = SimpleNamespace(resource_settings=ResourceSettings(max_threads=2, default_resources=defaults))
    assert Site.from_workflow(workflow) == Site(cpus=2, mem_mb=20000, runtime=600, partition="cpu")
    bare = SimpleNamespace(resource_settings=ResourceSettings())
    assert Site.from_workflow(bare) == Site()


def test_the_slurm_profile_declares_the_two_site_values():
    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert isinstance(profile["max-threads"], int) and isinstance(
        profile["default-resources"]["max_mem_mb"], int
    )
    # memory and runtime come from saeflow.cluster, not from per-rule lines in the profile
    for rule, res in (profile.get("set-resources") or {}).items():
        assert not {"mem_mb", "runtime"} & set(res or {}), rule
    noacct = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm-noacct" / "config.yaml").read_text())
    assert noacct == {"slurm-status-command": "squeue"}


def fake_slurm(tmp_path, monkeypatch, *, accounting, cpus=2, mem=20000, min_job_age=300):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sacct = (
        "echo '1|COMPLETED'\n" if accounting else "echo 'Slurm accounting storage is disabled' >&2; exit 1\n"
    )
    scripts = {
        "sbatch": "exit 0\n",
        "sinfo": f"printf 'cpu*|{cpus}|{mem}\\ngpu|{cpus}|{mem}\\nbig|64|512000\\n'\n",
        "sacct": sacct,
        "scontrol": f"echo 'MinJobAge               = {min_job_age} sec'\n",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")


def profile_with(tmp_path, threads, mem, init=60):
    text = (ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    profile["max-threads"] = threads
    profile["default-resources"]["max_mem_mb"] = mem
    profile["slurm-init-seconds-before-status-checks"] = init
    path = tmp_path / "profile"
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(profile))
    return path


def test_check_without_accounting_names_the_squeue_overlay(tmp_path, monkeypatch, capsys):
    fake_slurm(tmp_path, monkeypatch, accounting=False)
    assert cluster.check(profile_with(tmp_path, 2, 20000)) == 0
    out = capsys.readouterr().out
    assert "accounting: none (Slurm accounting storage is disabled)" in out
    assert "--profile" in out and "slurm-noacct" in out.splitlines()[-1]
    # the smallest node of the profile's partitions (cpu, gpu), not the big partition it does not use
    assert "2 CPUs, 20000 MB" in out


def test_check_with_accounting_keeps_sacct(tmp_path, monkeypatch, capsys):
    fake_slurm(tmp_path, monkeypatch, accounting=True)
    assert cluster.check(profile_with(tmp_path, 2, 16000)) == 0
    out = capsys.readouterr().out
    assert "keep the plugin's status command (sacct)" in out and "slurm-noacct" not in out


def test_check_names_the_two_site_values_to_lower(tmp_path, monkeypatch, capsys):
    fake_slurm(tmp_path, monkeypatch, accounting=True)
    assert cluster.check(profile_with(tmp_path, 16, 192000)) == 1
    out = capsys.readouterr().out
    assert "set max-threads: 2" in out and "set max_mem_mb (default-resources): 20000" in out


def test_check_warns_when_min_job_age_is_too_short_for_squeue(tmp_path, monkeypatch, capsys):
    fake_slurm(tmp_path, monkeypatch, accounting=False, min_job_age=60)
    assert cluster.check(profile_with(tmp_path, 2, 20000, init=60)) == 1
    assert "set slurm-init-seconds-before-status-checks <= 20" in capsys.readouterr().out


def test_check_without_slurm(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cluster.check(ROOT / "workflow" / "profiles" / "slurm") == 2
    assert "no SLURM commands" in capsys.readouterr().out


def test_device_rules_partition_follows_the_configs_gpus():
    site = Site(partition="cpu", gpu_partition="gpu")
    assert JobSizes({**SMALL, "gpu": 1}, site).partition() == "gpu"
    assert JobSizes({**SMALL, "gpu": 0}, site).partition() == "cpu"
    assert JobSizes({**SMALL, "gpu": 1}, Site(partition="cpu")).partition() == "cpu"  # no GPU partition named
    assert JobSizes({**SMALL, "gpu": 1}).partition() == ""  # off a cluster: nothing to name


def test_small_jobs_claim_one_thread_and_large_ones_the_multi_threaded_share():
    from saeflow.cluster import SMALL_JOB_TOKENS, job_threads

    assert job_threads(16_384, 2) == 1
    assert job_threads(SMALL_JOB_TOKENS - 1, 8) == 1
    assert job_threads(SMALL_JOB_TOKENS, 8) == 8
    assert job_threads(2_000_000, 0) == 1


def test_shared_threads_halves_the_cores():
    from saeflow.cluster import shared_threads

    assert shared_threads(2) == 1
    assert shared_threads(3) == 1
    assert shared_threads(16) == 8
    assert shared_threads(1) == 1
    assert shared_threads(None) == 1
