"""Job sizes for cluster runs, from one place, and a startup check of the SLURM site.

Sizes: every rule names a *kind* (``JOB_KINDS``); its memory and runtime come from the config's scale
(``scale``: the embedded/test configs are ``small``, the paper configs ``paper``), grow with the retry
``attempt``, and are capped at the largest job the site accepts (``Site``). The site is declared in the SLURM
profile by two values, read back by ``Site.from_workflow``:

- ``max-threads``: CPUs of a node (Snakemake itself caps every job's threads, i.e. ``--cpus-per-task``, to
it);
- ``default-resources: max_mem_mb``: memory (MB) of a node; optional ``max_runtime`` (minutes): the
partitions'
  time limit.

A retry that cannot get more than its failed attempt (the request already sat at the cap) is refused with one
line naming the resource, instead of being resubmitted with the same (or an impossible) request.

Check: ``python -m saeflow.cluster check [--profile workflow/profiles/slurm]`` probes ``sacct``, ``MinJobAge``
and the nodes' sizes, and prints which status command and which two site values this cluster needs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saeflow.errors import SaeflowError

SCALES = ("small", "paper")
# extraction.train_tokens from which a config counts as paper-scale (the embedded default extracts 1M tokens
# and its largest job peaks at 3.3 GB RSS, inside the small sizes; the test config 6k, the paper configs 50M)
PAPER_TOKENS = 10_000_000


@dataclass(frozen=True)
class Size:
    mem_mb: int
    runtime: int  # minutes


# kind -> size per scale. small: measured on the embedded default (peak RSS of the benchmark files, rounded up
# with margin); paper: what the paper configs need on a GPU node (activation shards, 16k-32k latent SAEs,
# hub datasets read whole).
JOB_KINDS: dict[str, dict[str, Size]] = {
    "asset": {"small": Size(1000, 30), "paper": Size(1000, 30)},  # fetch_asset (a localrule)
    "model": {"small": Size(6000, 30), "paper": Size(32000, 60)},  # prepare_model
    "corpus": {"small": Size(2000, 30), "paper": Size(32000, 240)},  # build_corpus, bib_sets
    "extract": {"small": Size(4000, 120), "paper": Size(64000, 720)},  # extract_activations, bib_activations
    "train": {"small": Size(4000, 120), "paper": Size(64000, 1440)},  # train_sae
    "lm_eval": {
        "small": Size(6000, 60),
        "paper": Size(32000, 240),
    },  # evaluations splicing the SAE into the LM
    "embed": {"small": Size(3000, 30), "paper": Size(32000, 480)},  # embed_corpus
    "analysis": {
        "small": Size(3000, 20),
        "paper": Size(32000, 240),
    },  # selection, frequencies, SAE statistics
    "table": {"small": Size(1000, 5), "paper": Size(4000, 30)},  # tables, reports, small text sets
}


class SiteLimitError(SaeflowError):
    """A job would need more than the site's largest job; raised instead of a pointless resubmission."""


def scale(config: dict) -> str:
    """`paper` when the config extracts at least PAPER_TOKENS training tokens, else `small`."""
    tokens = (config.get("extraction") or {}).get("train_tokens") or 0
    return "paper" if tokens >= PAPER_TOKENS else "small"


def _as_int(value) -> int | None:
    value = getattr(value, "value", value)  # a snakemake Resource
    if value is None or callable(value):
        return None
    try:
        return int(float(str(value).strip("'\"")))
    except ValueError:
        return None


@dataclass(frozen=True)
class Site:
    """The largest job the site accepts; None: no limit (a workstation run)."""

    cpus: int | None = None
    mem_mb: int | None = None
    runtime: int | None = None
    partition: str | None = None
    """The default partition (default-resources `slurm_partition`)."""
    gpu_partition: str | None = None
    """Where jobs that ask for GPUs go (default-resources `gpu_partition`)."""

    @classmethod
    def from_workflow(cls, workflow) -> Site:
        """From `--max-threads` and `--default-resources max_mem_mb=... max_runtime=... slurm_partition=...
        gpu_partition=...` (the profile's)."""
        settings = workflow.resource_settings
        defaults = settings.default_resources or {}
        get = defaults.get if hasattr(defaults, "get") else (lambda _key: None)
        return cls(
            cpus=_as_int(settings.max_threads),
            mem_mb=_as_int(get("max_mem_mb")),
            runtime=_as_int(get("max_runtime")),
            partition=_as_str(get("slurm_partition")),
            gpu_partition=_as_str(get("gpu_partition")),
        )


def _as_str(value) -> str | None:
    """A plain name given as a resource (a partition): Snakemake keeps a string resource as an expression
    to evaluate later, so its raw text is read, quotes stripped."""
    if hasattr(value, "is_evaluable"):  # a snakemake Resource
        value = value.raw if value.is_evaluable() else value.value
    if value is None or callable(value):
        return None
    return str(value).strip("'\"") or None


# Jobs over fewer rows than this run single-threaded: on a busy DAG two 1-thread jobs side by side do more
# work per core-second than one 2-thread job (measured on 2 cores, wall s at 2 / 1 threads: SSAE finetune
# on 16k tokens 6.2 / 6.8, extraction of 16k tokens 8.9 / 12.3: a second thread buys 10-40% for twice the
# claim).
SMALL_JOB_TOKENS = 200_000


def job_threads(tokens: int, max_threads: int) -> int:
    """Threads a job claims for work over `tokens` rows: 1 under SMALL_JOB_TOKENS, else `max_threads`."""
    return 1 if tokens < SMALL_JOB_TOKENS else max(1, int(max_threads))


def shared_threads(cores: int | None) -> int:
    """Threads a multi-threaded job of a local run on `cores` cores claims: half of them (at least one), so
    two such jobs run side by side. None (no --cores: a cluster executor or `--report`) claims one; there
    the profile's set-threads decide."""
    return max(1, int(cores or 1) // 2)


def _grow(base: int, attempt: int) -> int:
    return base * max(1, int(attempt))


class JobSizes:
    """Resource callables for the rules: ``resources: mem_mb=SIZES.mem_mb("train"), runtime=...``."""

    def __init__(self, config: dict, site: Site | None = None, profile_hint: str = "workflow/profiles/slurm"):
        self.scale = scale(config)
        self.site = site or Site()
        self.hint = profile_hint
        self.gpus = int(config.get("gpu") or 0)

    def partition(self) -> str:
        """`slurm_partition` of a rule that runs on config["device"] (it also declares gpu=config["gpu"]): the
        site's GPU partition when the config asks for GPUs, else its default partition ("" off a cluster).
        Declared by the rule itself, so a new study's GPU rule needs no line in the profile."""
        gpu = self.site.gpu_partition if self.gpus else None
        return gpu or self.site.partition or ""

    def size(self, kind: str) -> Size:
        try:
            return JOB_KINDS[kind][self.scale]
        except KeyError:
            raise SaeflowError(f"unknown job kind '{kind}'; known: {', '.join(JOB_KINDS)}") from None

    def mem_request(self, kind: str, attempt: int = 1, rule: str = "?") -> int:
        """Memory (MB) for `attempt`: the kind's size × attempt, capped at the site's max_mem_mb."""
        base, cap = self.size(kind).mem_mb, self.site.mem_mb
        if cap is None:
            return _grow(base, attempt)
        if attempt > 1 and min(_grow(base, attempt - 1), cap) >= cap:
            raise SiteLimitError(
                f"rule {rule}: attempt {attempt - 1} already asked for the site's largest memory "
                f"(max_mem_mb={cap} in {self.hint}); a retry cannot get more: lower mem_mb, i.e. the "
                "config's "
                "scale (batch_size, shard_rows, d_sae, documents), or raise max_mem_mb if nodes are larger"
            )
        return min(_grow(base, attempt), cap)

    def runtime_request(self, kind: str, attempt: int = 1, units: int = 1) -> int:
        """Minutes for `attempt` of a job doing `units` pieces of the kind's work (e.g. an evaluation on three
        eval sets; a timed-out job gets more), capped at the site's max_runtime."""
        want = _grow(self.size(kind).runtime * max(1, int(units)), attempt)
        return want if self.site.runtime is None else min(want, self.site.runtime)

    # the callables Snakemake evaluates per job (it passes only the arguments a callable names)
    def mem_mb(self, kind: str):
        self.size(kind)  # an unknown kind fails at parse time

        def mem_mb(wildcards, attempt, rulename="?"):
            return self.mem_request(kind, attempt, rulename)

        return mem_mb

    def runtime(self, kind: str, units: Callable[[Any], int] | None = None):
        """`units`: wildcards -> how many pieces of the kind's work the job does (default one)."""
        self.size(kind)

        def runtime(wildcards, attempt):
            return self.runtime_request(kind, attempt, units(wildcards) if units else 1)

        return runtime

    def table(self) -> list[tuple[str, int, int]]:
        """(kind, mem_mb, runtime) of a first attempt, as submitted on this site."""
        return [(k, self.mem_request(k), self.runtime_request(k)) for k in JOB_KINDS]


# ---------------------------------------------------------------------------------------------------------
# startup check


def _run(cmd: list[str], timeout: int = 20) -> tuple[int, str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 127, str(err)
    return out.returncode, (out.stdout + out.stderr).strip()


def accounting_works() -> tuple[bool, str]:
    """Whether `sacct` answers (what the executor plugin's default status command needs), and why not."""
    if shutil.which("sacct") is None:
        return False, "no sacct on PATH"
    # the plugin's own query, minus the job name
    rc, out = _run(
        ["sacct", "-X", "--parsable2", "--noheader", "--format=JobIdRaw,State", "--starttime", "now-1hours"]
    )
    if rc != 0:
        return False, (out.splitlines() or [f"exit status {rc}"])[0]
    return True, "sacct answers"


def min_job_age() -> int | None:
    """Seconds a finished job stays visible to squeue (slurm.conf MinJobAge)."""
    rc, out = _run(["scontrol", "show", "config"])
    m = re.search(r"^MinJobAge\s*=\s*(\d+)", out, flags=re.MULTILINE) if rc == 0 else None
    return int(m.group(1)) if m else None


def node_sizes(partitions: list[str] | None = None) -> tuple[int, int] | None:
    """(CPUs, memory MB) of the smallest node of `partitions` (all when None), from sinfo."""
    rc, out = _run(["sinfo", "--noheader", "--Node", "--format=%P|%c|%m"])
    if rc != 0:
        return None
    sizes = []
    for line in out.splitlines():
        part, cpus, mem = (line.split("|") + ["", "", ""])[:3]
        if partitions and part.rstrip("*") not in partitions:
            continue
        try:
            sizes.append((int(cpus), int(mem.rstrip("+"))))
        except ValueError:
            continue
    if not sizes:
        return None
    return min(c for c, _ in sizes), min(m for _, m in sizes)


def _profile(path: Path) -> dict:
    import yaml

    file = path / "config.yaml" if path.is_dir() else path
    return (yaml.safe_load(file.read_text()) or {}) if file.exists() else {}


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


NOACCT_PROFILE = Path(__file__).resolve().parents[2] / "workflow" / "profiles" / "slurm-noacct"


def check(profile: Path, noacct_profile: Path = NOACCT_PROFILE) -> int:
    """Print what this SLURM site needs from the profile and the command line to run; 0 when the profile fits,
    1 when an edit is needed, 2 when no SLURM commands are found."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        print("no SLURM commands (sinfo, sbatch) on PATH: run this on the login node you submit from")
        return 2
    prof = _profile(profile)
    init = int(prof.get("slurm-init-seconds-before-status-checks", 40))
    problems = 0

    ok, why = accounting_works()
    if ok:
        profiles = f"--profile {profile}"
        print(f"accounting: {why}: keep the plugin's status command (sacct)")
    else:
        profiles = f"--profile {profile} --profile {_shown(noacct_profile)}"
        print(
            f"accounting: none ({why}): the plugin's sacct status check would never see a job finish; "
            f"add the slurm-noacct profile (slurm-status-command: squeue)"
        )
        age = min_job_age()
        if age is not None and age < 3 * init:
            problems += 1
            print(
                f"  MinJobAge={age}s < 3 x slurm-init-seconds-before-status-checks ({init}): the plugin "
                "would "
                f"fall back to sacct; set slurm-init-seconds-before-status-checks <= {age // 3}"
            )

    defaults = prof.get("default-resources") or {}
    partitions = sorted(
        {str(defaults.get("slurm_partition", "")), str(defaults.get("gpu_partition", ""))}
        | {
            str(r.get("slurm_partition"))
            for r in (prof.get("set-resources") or {}).values()
            if isinstance(r, dict) and r.get("slurm_partition")
        }
        - {""}
    )
    sizes = node_sizes(partitions or None)
    if sizes is None:
        print(
            f"nodes: sinfo lists no node of partitions {partitions}: set slurm_partition (sinfo -s lists "
            "them)"
        )
        return 1
    cpus, mem = sizes
    print(f"nodes of partitions {', '.join(partitions) or '(all)'}: the smallest has {cpus} CPUs, {mem} MB")
    for key, have, site, what in (
        ("max-threads", _as_int(prof.get("max-threads")), cpus, "a larger --cpus-per-task pends forever"),
        (
            "max_mem_mb (default-resources)",
            _as_int(defaults.get("max_mem_mb")),
            mem,
            "sbatch rejects a larger --mem",
        ),
    ):
        if have is None or have > site:
            problems += 1
            print(f"  set {key}: {site} in {profile} (now {have}): {what}")
        else:
            print(f"  {key}: {have} fits")
    print("profile fits this cluster" if not problems else f"{problems} edit(s) needed (above)")
    print(f"run: snakemake {profiles} --configfile CONFIG")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m saeflow.cluster", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_check = sub.add_parser("check", help="which status command and site values this SLURM cluster needs")
    p_check.add_argument("--profile", type=Path, default=Path("workflow/profiles/slurm"))
    p_sizes = sub.add_parser("sizes", help="the first-attempt request of each job kind for a config")
    p_sizes.add_argument("--configfile", nargs="*", default=[])
    p_sizes.add_argument("--max-mem-mb", type=int)
    p_sizes.add_argument("--max-runtime", type=int)
    args = parser.parse_args(argv)
    if args.cmd == "check":
        return check(args.profile)
    from saeflow.config import load_config_files

    root = Path(__file__).resolve().parents[2]
    sizes = JobSizes(load_config_files(root, *args.configfile), Site(None, args.max_mem_mb, args.max_runtime))
    print(f"scale: {sizes.scale}")
    for kind, mem, runtime in sizes.table():
        print(f"{kind:10s} mem_mb={mem:<6d} runtime={runtime}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
