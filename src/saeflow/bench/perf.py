"""Measurements behind ``python -m saeflow.bench train|stream|schedule``: synthetic activation stores,
trainer throughput (fast and dense TopK paths, the encoder-matmul bound, SAELens as a reference), streaming
from a store larger than the RAM budget, and the Snakemake dry-run time of a 200-SAE sweep.

Every rate is measured through the project's own code paths (`saeflow.train.train_sae` on an on-disk store),
so a figure is what a workflow job gets, data loading included.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from saeflow.activations import MANIFEST, ActivationStore, ActivationWriter


class Rate(NamedTuple):
    """Best and median of repeated measurements of one rate (items per second)."""

    best: float
    median: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, runs: list[float]) -> Rate:
        return cls(max(runs), statistics.median(runs), tuple(runs))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------------
# synthetic activations
# --------------------------------------------------------------------------------------------------


class SyntheticActivations:
    """Residual-stream-like rows: a mean offset + a sparse non-negative mix of `per_row` of `n_features` unit
    directions + small noise. Row blocks are deterministic in (seed, block index), so any size streams."""

    def __init__(self, d: int, *, seed: int = 0, n_features: int = 8192, per_row: int = 16):
        g = torch.Generator().manual_seed(seed)
        self.d, self.seed, self.per_row = d, seed, per_row
        feats = torch.randn(n_features, d, generator=g)
        self.features = feats / feats.norm(dim=1, keepdim=True)
        self.mean = torch.randn(d, generator=g)

    def block(self, index: int, rows: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index + 1)
        idx = torch.randint(0, self.features.shape[0], (rows, self.per_row), generator=g)
        coef = torch.rand(rows, self.per_row, generator=g) * 2
        x = F.embedding_bag(idx, self.features, per_sample_weights=coef, mode="sum")
        return x.add_(self.mean).add_(torch.randn(rows, self.d, generator=g), alpha=0.05)


def write_synthetic_store(
    out_dir: str | Path,
    n_rows: int,
    d: int,
    *,
    seed: int = 0,
    shard_rows: int = 32768,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write `n_rows` synthetic rows as an activation set (saeflow.activations' format); returns the manifest.

    Generated shard by shard: memory stays O(shard_rows · d) whatever `n_rows` is.
    """
    out_dir = Path(out_dir)
    gen = SyntheticActivations(d, seed=seed)
    writer = ActivationWriter(
        out_dir, model="synthetic", layer=0, d_model=d, shard_rows=shard_rows, dtype=dtype
    )
    for i, s in enumerate(range(0, n_rows, shard_rows)):
        rows = min(shard_rows, n_rows - s)
        writer.add(
            [f"block{i}"],
            gen.block(i, rows),
            token_ids=torch.zeros(rows, dtype=torch.int32),
            counts=[rows],
            positions=torch.arange(1, rows + 1, dtype=torch.int32),
        )
    writer.finish(
        max_tokens=n_rows, max_length=shard_rows, batch_size=shard_rows, extra={"synthetic_seed": seed}
    )
    return out_dir / MANIFEST


# --------------------------------------------------------------------------------------------------
# trainer throughput
# --------------------------------------------------------------------------------------------------


class TrainerBench:
    """saeflow's trainer (Adam, fp32) on an on-disk store: data loading, optimiser, bookkeeping included.
    `sae` holds SAEConfig fields (architecture default topk)."""

    def __init__(self, store: ActivationStore, sae: dict, batch: int, *, device: str = "cpu"):
        from saeflow.sae import SAEConfig

        self.store, self.batch, self.device = store, batch, device
        self.cfg = SAEConfig.from_dict({"architecture": "topk", "d_in": store.d_model, **sae})

    def rate(self, steps: int) -> float:
        """Activations/s over `steps` steps (the trainer's own clock: the training loop, not the set-up)."""
        return self.run(steps).rate

    def run(self, steps: int) -> TrainerRun:
        """Activations/s over `steps` steps and the last step's loss (same seed and data on every path)."""
        from saeflow.train import TrainConfig, train_sae

        tcfg = TrainConfig(
            lr=4e-4,
            batch_size=self.batch,
            epochs=steps * self.batch / self.store.n_tokens,
            warmup_steps=min(50, steps),
            checkpoint_every=0,
            log_every=10**9,
        )
        with tempfile.TemporaryDirectory(prefix="saeflow-bench-") as out:
            metrics = train_sae(self.cfg, tcfg, self.store, out, device=self.device).metrics
        return TrainerRun(metrics["activations_per_s"], metrics["history"][-1]["loss"])


class TrainerRun(NamedTuple):
    rate: float
    """Activations/s."""
    final_loss: float
    """The last step's training loss."""


def encoder_matmul_rate(
    d_in: int,
    d_sae: int,
    batch: int,
    repeats: int = 5,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> float:
    """Activations/s if a step cost only the encoder's forward matmul (x − b_dec)·W_enc + b_enc in `dtype`:
    the bound of a training step whose selection runs in that dtype."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, d_in, generator=g).to(device, dtype)
    w = (torch.randn(d_in, d_sae, generator=g) / math.sqrt(d_in)).to(device, dtype)
    b = torch.zeros(d_sae, device=device, dtype=dtype)
    return Rate.of([batch / _timed(lambda: torch.addmm(b, x, w), device) for _ in range(repeats)]).best


def _timed(fn: Callable[[], object], device: str = "cpu") -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def saelens_rate(
    d_in: int, d_sae: int, k: int, batch: int, steps: int, *, sparse: bool = False, seed: int = 0
) -> float:
    """Activations/s of SAELens' TopK training step (its SAETrainer._train_step: forward, firing statistics,
    backward, grad-norm clip, Adam) on synthetic activations held in memory; needs `sae_lens` importable."""
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    torch.manual_seed(seed)
    sae = TopKTrainingSAE(
        TopKTrainingSAEConfig(
            d_in=d_in, d_sae=d_sae, k=k, dtype="float32", device="cpu", use_sparse_activations=sparse
        )
    )
    opt = torch.optim.Adam(sae.parameters(), lr=4e-4, betas=(0.9, 0.999))
    gen = SyntheticActivations(d_in, seed=seed)
    since_fired = torch.zeros(d_sae)
    data = [gen.block(i, batch) for i in range(steps + 1)]

    def step(i: int, x: torch.Tensor) -> None:
        out = sae.training_forward_pass(
            TrainStepInput(
                sae_in=x,
                coefficients={},
                dead_neuron_mask=since_fired > 1000,
                n_training_steps=i,
                is_logging_step=False,
            )
        )
        with torch.no_grad():
            fired = out.feature_acts.bool().float().sum(-2).bool()
            if fired.is_sparse:
                fired = fired.to_dense()
            since_fired.add_(1)
            since_fired[fired] = 0
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    step(0, data[0])  # warm-up, untimed
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i, data[i])
    return steps * batch / (time.perf_counter() - start)


def saelens_rate_subprocess(
    python: str, d_in: int, d_sae: int, k: int, batch: int, steps: int, repeats: int
) -> Rate:
    """The SAELens measurement in another interpreter (:func:`reference_rate_subprocess`). (SAELens'
    `use_sparse_activations` variant fails in backward on CPU with torch 2.13 — aten::view on a sparse tensor
    — so its default dense TopK is the reference.)"""
    return reference_rate_subprocess(python, "saelens", d_in, d_sae, k, batch, steps, repeats)


def sparsify_rate(d_in: int, d_sae: int, k: int, batch: int, steps: int, *, seed: int = 0) -> float:
    """Activations/s of EleutherAI sparsify's TopK training step (its Trainer.fit inner loop: decoder rows to
    unit norm, forward with the dead-latent mask and AuxK, backward, gradient parallel to the decoder removed,
    Adam, firing statistics) on synthetic activations held in memory, fp32; needs `sparsify`
    (eai-sparsify)."""
    from sparsify import SaeConfig, SparseCoder

    torch.manual_seed(seed)
    sae = SparseCoder(d_in, SaeConfig(num_latents=d_sae, k=k), device="cpu", dtype=torch.float32)
    opt = torch.optim.Adam(sae.parameters(), lr=4e-4, betas=(0.9, 0.999))
    gen = SyntheticActivations(d_in, seed=seed)
    since_fired = torch.zeros(d_sae, dtype=torch.long)
    data = [gen.block(i, batch) for i in range(steps + 1)]

    def step(x: torch.Tensor) -> None:
        sae.set_decoder_norm_to_unit_norm()
        dead_mask = since_fired > 10_000_000
        total_variance = (x - x.mean(0)).pow(2).sum()
        out = sae(x, dead_mask=dead_mask, total_variance=total_variance)
        (out.fvu + (1 / 32) * out.auxk_loss).backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            since_fired.add_(x.shape[0])
            since_fired[out.latent_indices.flatten()] = 0

    step(data[0])  # warm-up, untimed
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(data[i])
    return steps * batch / (time.perf_counter() - start)


def reference_rate_subprocess(
    python: str, which: str, d_in: int, d_sae: int, k: int, batch: int, steps: int, repeats: int
) -> Rate:
    """Run a reference measurement (`which`: "saelens" or "sparsify") in another interpreter, one with that
    package installed (saeflow comes from this checkout via PYTHONPATH), `repeats` times."""
    fn = {"saelens": "saelens_rate", "sparsify": "sparsify_rate"}[which]
    src = str(Path(__file__).resolve().parents[2])  # the directory holding the saeflow package
    env = {
        **os.environ,
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
    }  # the same thread count as this process
    code = (
        f"import sys, json; from saeflow.bench.perf import {fn} as r; a = json.loads(sys.argv[1]); "
        "print(json.dumps([r(*a['args']) for _ in range(a['repeats'])]))"
    )
    cmd = [python, "-c", code, json.dumps({"args": [d_in, d_sae, k, batch, steps], "repeats": repeats})]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{which} reference failed in {python}: {out.stderr.strip()[-2000:]}")
    return Rate.of(json.loads(out.stdout.strip().splitlines()[-1]))


def python_has(python: str, module: str) -> bool:
    """Whether `module` imports in interpreter `python` (without importing it here)."""
    if python == sys.executable:
        import importlib.util

        return importlib.util.find_spec(module) is not None
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    out = subprocess.run([python, "-c", code], capture_output=True, check=False)
    return out.returncode == 0


# --------------------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------------------


def read_rate(store: ActivationStore, batch: int, *, seed: int = 0) -> tuple[int, float]:
    """(rows, rows/s) of one shuffled epoch of the trainer's reader (`iter_batches`, float32 batches)."""
    rows, start = 0, time.perf_counter()
    for b in store.iter_batches(batch, shuffle=True, seed=seed):
        rows += b.shape[0]
    return rows, rows / (time.perf_counter() - start)


def run_phase(args: list[str]) -> dict[str, str]:
    """Run `python -m saeflow.bench stream --phase ...` in a fresh process (own peak RSS); parse key=value."""
    out = subprocess.run(
        [sys.executable, "-m", "saeflow.bench", "stream", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"stream phase {args} failed: {out.stderr.strip()[-2000:]}")
    return dict(kv.split("=", 1) for kv in out.stdout.strip().splitlines()[-1].split() if "=" in kv)


# --------------------------------------------------------------------------------------------------
# scheduling
# --------------------------------------------------------------------------------------------------


def dry_run_seconds(
    snakefile: Path, configfile: Path, workdir: Path, extra: list[str] | None = None
) -> tuple[float, int]:
    """(seconds, number of jobs) of `snakemake -n --configfile configfile` in `workdir` (a fresh directory, so
    every job is pending), the way a user would run it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "-n",
        "--cores",
        "2",
        "--configfile",
        str(configfile),
        *(extra or []),
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"snakemake -n failed: {out.stderr.strip()[-2000:]}")
    jobs = 0
    for line in (out.stdout + out.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            jobs = int(parts[1])
    return seconds, jobs


# --------------------------------------------------------------------------------------------------
# spliced evaluation: one SAE's job, full passes vs the shared cache
# --------------------------------------------------------------------------------------------------


def eval_job(
    mode: str,
    model_dir: str,
    sae_dir: str,
    texts: str,
    cache: str,
    layer: int,
    tokens: int,
    batch_size: int,
    max_length: int,
) -> dict:
    """What one evaluate_sae job does, in this process: `full` (today's path: tokenise, clean + spliced full
    forward passes), `cached` / `cached-ours` (load the shared cache, upper passes only; with / without the
    SAELens-convention pass), `cached-ours-bf16` (cached-ours with the upper layers in bfloat16; the cache,
    built in float32, keeps the clean CE and KL terms) or `build` (the shared per-eval-set job writing
    `cache`)."""
    from saeflow.evaluate import (
        BaselineResult,
        EvalCache,
        build_cache,
        eval_batches,
        evaluate_sae,
        evaluate_sae_cached,
    )
    from saeflow.io import read_jsonl
    from saeflow.models.causal_lm import load_lm
    from saeflow.sae.boosted import load_for_evaluation

    torch.set_num_threads(1)
    lm = load_lm(model_dir, dtype="bfloat16" if mode.endswith("-bf16") else "float32")
    if mode in ("full", "build"):
        docs = [d["text"] for d in read_jsonl(texts)]
        batches = eval_batches(lm, docs, max_tokens=tokens, batch_size=batch_size, max_length=max_length)
        if mode == "build":
            build_cache(lm, layer, batches).save(cache, cache + ".json")
            return {}
        sae = load_for_evaluation(sae_dir)
        # the baseline is its own job (not part of an SAE's cost); a placeholder CE_zero
        return evaluate_sae(lm, layer, sae, batches, BaselineResult(1, 1.0, 2.0)).row()
    c = EvalCache.load(cache, cache + ".json")
    return evaluate_sae_cached(lm, load_for_evaluation(sae_dir), c, saelens=mode == "cached").row()


def eval_job_cpu_seconds(python: str, **kwargs) -> tuple[float, dict]:
    """(CPU seconds, metrics) of :func:`eval_job` in a fresh single-threaded interpreter: start-up, imports
    and model load included, as a workflow job pays them."""
    code = (
        "import sys, json; from saeflow.bench.perf import eval_job; "
        "print(json.dumps(eval_job(**json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [python, "-c", code, json.dumps(kwargs)], capture_output=True, text=True, env=env, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"eval job {kwargs['mode']} failed: {out.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, json.loads(out.stdout.strip().splitlines()[-1])
