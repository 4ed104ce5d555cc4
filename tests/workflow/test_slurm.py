"""The cluster path against a real SLURM: a one-node cluster on localhost (.ci/slurm/start.sh: slurmctld,
slurmd, munge from Debian, no accounting database), the project's SLURM profile with its two site values set,
and a few targets of config/test.yaml submitted through sbatch.

Needs root (slurmd) and either the Debian packages or apt-get (installed on the fly); otherwise it skips and
says why. About 2-3 minutes on 2 CPU cores. Run alone: `pytest -m slurm -rs tests/workflow/test_slurm.py`.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import snakemake_command

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / ".ci" / "slurm"
PROFILES = ROOT / "workflow" / "profiles"
NODE_CPUS, NODE_MEM_MB = 2, 20000  # the small cluster
TARGETS = ["results/test/texts/general.train.jsonl", "results/test/sae/gsae/sae_weights.safetensors"]
CANCEL_RULE = "prepare_model"  # a job that runs for ~20 s: long enough to be caught running and cancelled

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


def _free_port_pair():
    for port in range(16817, 17817, 2):
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for slurmctld/slurmd")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """SLURM_CONF of a running one-node cluster; its daemons are stopped by PID at the end."""
    if os.geteuid() != 0:
        pytest.skip("real-SLURM test skipped: needs root (slurmd runs as root)")
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(b) is None]
    if missing and shutil.which("apt-get") is None:
        pytest.skip(f"real-SLURM test skipped: {', '.join(missing)} missing and no apt-get to install them")
    state = tmp_path_factory.mktemp("slurm")
    env = {
        **os.environ,
        "SLURM_CI_INSTALL": "1",
        "SLURM_CI_CPUS": str(NODE_CPUS),
        "SLURM_CI_MEM_MB": str(NODE_MEM_MB),
        "SLURM_CI_PORT": str(_free_port_pair()),
    }
    start = subprocess.run(
        [str(CI / "start.sh"), str(state)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    try:
        if start.returncode == 77:
            pytest.skip(f"real-SLURM test skipped: {start.stderr.strip().splitlines()[-1]}")
        assert start.returncode == 0, start.stdout + start.stderr
        yield {"SLURM_CONF": str(state / "slurm.conf")}
    finally:
        subprocess.run([str(CI / "stop.sh"), str(state)], check=False, timeout=60)
        for d in ("slurmctld", "slurmd", "munged"):
            assert not (state / f"{d}.pid").exists(), f"{d} still running"
        link = Path("/run/slurm/conf")
        assert not (link.is_symlink() and str(state) in os.readlink(link)), "slurmd's config link left behind"


def site_profile(tmp_path):
    """The project's SLURM profile after the two site edits of its header (max-threads, max_mem_mb)."""
    text = (PROFILES / "slurm" / "config.yaml").read_text()
    text, n_threads = re.subn(r"^max-threads: \d+", f"max-threads: {NODE_CPUS}", text, flags=re.MULTILINE)
    text, n_mem = re.subn(
        r"^(\s+)max_mem_mb: \d+", rf"\g<1>max_mem_mb: {NODE_MEM_MB}", text, flags=re.MULTILINE
    )
    assert n_threads == 1 and n_mem == 1, "the profile should declare max-threads and max_mem_mb once each"
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(text)
    return profile


def slurm(env, *args):
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=60, check=False).stdout


def _mb(text: str) -> int:
    """squeue's %m (6000M, 12G, ...) in MB."""
    return int(float(text[:-1]) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[text[-1]])


def submitted(log: str) -> dict[str, str]:
    """{SLURM job id: rule} of the submissions a snakemake log reports."""
    jobs, rule = {}, None
    for line in log.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif m := re.search(r"submitted with SLURM jobid (\d+)", line):
            jobs[m.group(1)] = rule
    return jobs


def test_profile_runs_on_a_one_node_cluster_without_accounting(cluster, tmp_path):
    t0 = time.monotonic()
    env = {
        **os.environ,
        **cluster,
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    profile = site_profile(tmp_path)

    # the startup check: no accounting here, so it names the slurm-noacct overlay; the two site values fit
    check = subprocess.run(
        [sys.executable, "-m", "saeflow.cluster", "check", "--profile", str(profile)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    print(check.stdout)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "accounting: none" in check.stdout and "slurm-noacct" in check.stdout

    work = tmp_path / "run"
    work.mkdir()
    cmd = [
        *snakemake_command(work),
        "--profile",
        str(profile),
        "--profile",
        str(PROFILES / "slurm-noacct"),
        "--configfile",
        str(ROOT / "config" / "test.yaml"),
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--latency-wait",
        "5",
        "--",
        *TARGETS,
    ]
    log_path = tmp_path / "first.log"
    with log_path.open("w") as log:
        run = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, text=True)
        cancelled, seen = None, {}  # SLURM job id -> (state, memory asked for), polled while the run goes
        deadline = time.monotonic() + 600
        while run.poll() is None and time.monotonic() < deadline:
            for line in slurm(
                env, "squeue", "--states=all", "--noheader", "--format=%i|%k|%T|%m"
            ).splitlines():
                job, comment, state, mem = line.split("|")
                seen[job] = (state, mem)
                if cancelled is None and comment.startswith(f"rule_{CANCEL_RULE}") and state == "RUNNING":
                    time.sleep(2)
                    slurm(env, "scancel", job)
                    cancelled = job
            time.sleep(1)
        if run.poll() is None:
            run.kill()
    first = log_path.read_text()
    elapsed = time.monotonic() - t0
    print(f"first run through SLURM: {elapsed:.0f} s")
    assert run.returncode == 0, first[-6000:]

    # every non-local job went through sbatch, and the cluster saw them all complete (or the cancelled one)
    jobs = submitted(first)
    assert {"build_corpus", "prepare_model", "extract_activations", "train_sae"} <= set(jobs.values()), jobs
    for line in slurm(env, "squeue", "--states=all", "--noheader", "--format=%i|%T|%m").splitlines():
        job, state, mem = line.split("|")  # final states (MinJobAge of the CI cluster: 1 h)
        seen[job] = (state, mem)
    assert cancelled is not None, f"no running {CANCEL_RULE} job was seen to cancel"
    assert seen[cancelled][0] == "CANCELLED", seen
    assert all(seen[j][0] == "COMPLETED" for j in jobs if j != cancelled), (jobs, seen)
    # the cancelled job was retried: a second sbatch of the same rule, with twice the memory, that completed
    tries = [j for j, r in jobs.items() if r == CANCEL_RULE]
    assert len(tries) == 2 and "Trying to restart" in first, first[-4000:]
    mem = [_mb(seen[j][1]) for j in sorted(tries, key=int)]
    assert mem[1] == 2 * mem[0] <= NODE_MEM_MB, mem

    # outputs complete; the successful jobs' SLURM logs are kept
    for target in TARGETS:
        assert (work / target).stat().st_size > 0, target
    kept = {
        part for p in (work / "logs" / "slurm").rglob("*.log") for part in p.parts if part.startswith("rule_")
    }
    assert kept >= {"rule_build_corpus", "rule_train_sae"}, kept

    # a rerun submits nothing
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr
    assert not submitted(again.stdout + again.stderr)
    print(f"real-SLURM test: {time.monotonic() - t0:.0f} s, {len(jobs)} sbatch jobs, cancelled {cancelled}")
