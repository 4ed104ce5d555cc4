"""SAE trainer: Adam with warm-up and linear decay, input scaling, decoder-norm handling, ERM/TERM,
periodic checkpoints to `<out_dir>/.checkpoint/` and resume after a kill, metrics always written to JSON."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError
from saeflow.io import atomic_path, write_json
from saeflow.metrics import ReconstructionAccumulator
from saeflow.outliers import DEFAULT_OUTLIER_RATIO, inlier_mean, outlier_threshold
from saeflow.sae import SAEConfig, SparseAutoencoder, load_sae, make_sae
from saeflow.sae.kernels import coalesce_latents
from saeflow.sae.objectives import batch_objective
from saeflow.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyper-parameters of one SAE training run."""

    lr: float = 4e-4
    """Peak Adam learning rate."""
    batch_size: int = 1024
    """Activations per step."""
    epochs: float = 1.0
    """Passes over the activation store (fractions allowed)."""
    warmup_steps: int = 50
    """Linear learning-rate warm-up."""
    decay_fraction: float = 0.2
    """Final share of steps over which the learning rate decays linearly to 0."""
    tilt: float = 0.0
    """TERM tilt t over the per-token losses of a minibatch (0 = ERM)."""
    grad_clip: float = 1.0
    """Max global gradient norm (0 disables)."""
    seed: int = 0
    """Seeds initialisation and data order."""
    checkpoint_every: int = 200
    """Steps between checkpoints (resume after a kill)."""
    log_every: int = 25
    """Steps between logged history points."""
    outlier_norm_ratio: float = DEFAULT_OUTLIER_RATIO
    """Rows with a norm above this × the median norm are not trained on (saeflow.outliers; ≤ 0 keeps all)."""

    def __post_init__(self):
        if self.batch_size < 1 or self.lr <= 0 or self.epochs <= 0:
            raise ConfigError(
                f"train: batch_size, lr and epochs must be positive; got {self.batch_size}, {self.lr}, {self.epochs}"
            )
        if self.tilt < 0:
            raise ConfigError(f"train.tilt must be >= 0; got {self.tilt}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class TrainResult(NamedTuple):
    sae: SparseAutoencoder
    metrics: dict[str, Any]


def _lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    decay_start = int(total * (1 - cfg.decay_fraction))
    if step >= decay_start and total > decay_start:
        return max(0.0, (total - step) / (total - decay_start))
    return 1.0


def _init_decoder_bias(sae: SparseAutoencoder, store: ActivationStore, scale: float, seed: int,
                       max_norm: float) -> None:
    """b_dec starts at the mean activation (a cheap stand-in for the geometric median)."""
    batch = next(store.iter_batches(min(8192, store.n_tokens), shuffle=True, seed=seed, max_norm=max_norm))
    with torch.no_grad():
        sae.b_dec.copy_(batch.mean(0) * scale)


def _adam(sae: SparseAutoencoder, lr: float) -> torch.optim.Adam:
    """Adam with the fused (single-pass) kernel where the device supports it: several times faster than the
    multi-pass default on CPU for SAE-sized parameters, the same update up to float rounding."""
    try:
        return torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, ValueError):  # pragma: no cover - devices without a fused kernel
        return torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999))


def _save_checkpoint(path: Path, sae, opt, step: int, progress: dict[str, Any]) -> None:
    """Everything a resumed run needs to continue exactly as if never stopped (RNG state included: some
    architectures draw random numbers in their loss, e.g. OrtSAE's chunk partition)."""
    state = {"sae": sae.state_dict(), "opt": opt.state_dict(), "step": step, "scale": sae.input_scale,
             "since_fired": sae.tokens_since_fired.clone(), "rng": torch.get_rng_state(), **progress}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _l0(latents: torch.Tensor) -> float:
    """Mean active latents per token, for dense or sparse COO [N, m] latents."""
    if latents.is_sparse:
        return float((latents._values() > 0).sum()) / max(latents.shape[0], 1)
    return float((latents > 0).sum(-1).float().mean())


def train_sae(
    sae_cfg: SAEConfig,
    train_cfg: TrainConfig,
    store: ActivationStore,
    out_dir: str | Path,
    *,
    init_from: str | Path | None = None,
    tracker: Tracker | None = None,
    metadata: dict[str, Any] | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train (or finetune, with `init_from`) an SAE on a stored activation set; save it into `out_dir`."""
    out_dir = Path(out_dir)
    ckpt_path = out_dir / ".checkpoint" / "state.pt"
    if sae_cfg.d_in != store.d_model:
        raise ConfigError(f"sae.d_in ({sae_cfg.d_in}) does not match the activations' d_model ({store.d_model})")
    torch.manual_seed(train_cfg.seed)
    norms = store.sample_norms(seed=train_cfg.seed)  # one read of the sample: outlier cut and input scale
    max_norm = outlier_threshold(norms, train_cfg.outlier_norm_ratio)
    sae = make_sae(sae_cfg, seed=train_cfg.seed)
    if init_from is not None:
        parent = load_sae(init_from)
        sae.load_saved_weights(parent.weights_for_saving(), input_scale=1.0)
        # Finetuning keeps the parent's input scale so its learned features mean the same thing.
        scale = json.loads((Path(init_from) / "cfg.json").read_text())["saeflow"]["input_scale"]
        sae.set_input_scale_(scale)
    else:
        scale = math.sqrt(store.d_model) / max(inlier_mean(norms, max_norm), 1e-8)
        sae.input_scale = scale
        _init_decoder_bias(sae, store, scale, train_cfg.seed, max_norm)
    sae.to(device)
    opt = _adam(sae, train_cfg.lr)
    total_steps = max(1, math.ceil(store.n_tokens * train_cfg.epochs / train_cfg.batch_size))

    start_step = 0
    history: list[dict[str, float]] = []
    tail = ReconstructionAccumulator()
    tokens = 0
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        sae.load_state_dict(state["sae"])
        opt.load_state_dict(state["opt"])
        sae.input_scale = state["scale"]
        sae.tokens_since_fired.copy_(state["since_fired"])
        start_step = state["step"]
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        history, tail, tokens = state.get("history", history), state.get("tail", tail), state.get("tokens", 0)
        log.info("resuming from %s at step %d/%d", ckpt_path, start_step, total_steps)

    batches = store.iter_batches(train_cfg.batch_size, shuffle=True, seed=train_cfg.seed,
                                 epochs=math.ceil(train_cfg.epochs), max_norm=max_norm)
    tail_from = int(total_steps * 0.9)
    t0 = time.perf_counter()
    tokens_before = tokens
    step = 0
    for step, batch in enumerate(batches):
        if step >= total_steps:
            break
        if step < start_step:
            continue  # replaying the deterministic data order up to the checkpoint
        if step == start_step:
            t0 = time.perf_counter()  # the rate counts training, not the replay
        x = batch.to(device) * sae.input_scale
        for group in opt.param_groups:
            group["lr"] = train_cfg.lr * _lr_factor(step, total_steps, train_cfg)
        terms = sae.training_loss(x)
        loss = batch_objective(terms.per_token, terms.aux, train_cfg.tilt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_decoder_grad_()
        if train_cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(sae.parameters(), train_cfg.grad_clip)
        opt.step()
        sae.normalize_decoder_()
        sae.update_dead_tracking_(terms.latents)
        tokens += x.shape[0]
        if step >= tail_from:
            tail.update(x.detach(), terms.recon.detach(), coalesce_latents(terms.latents.detach()))
        if step % train_cfg.log_every == 0 or step == total_steps - 1:
            point = {"step": step, "loss": float(loss.detach()), "l0": _l0(terms.latents), **terms.logs}
            history.append(point)
            if tracker:
                tracker.log(point, step=step)
        if train_cfg.checkpoint_every and (step + 1) % train_cfg.checkpoint_every == 0:
            progress = {"history": history, "tail": tail, "tokens": tokens}
            _save_checkpoint(ckpt_path, sae, opt, step + 1, progress)
    elapsed = time.perf_counter() - t0
    calibration = {}
    if hasattr(sae, "calibrate_threshold_"):  # BatchTopK family: set the inference threshold on held-back rows
        sample = next(store.iter_batches(min(8192, store.n_tokens), shuffle=True, seed=train_cfg.seed + 1,
                                         max_norm=max_norm))
        ema = float(sae.threshold.mean())
        calibration = {"threshold_ema": ema, "threshold": sae.calibrate_threshold_(sample.to(device) * sae.input_scale)}
    final = tail.result() if tail.n_tokens else None
    metrics = {
        "steps": total_steps,
        "tokens_trained": tokens,
        "seconds": elapsed,
        "activations_per_s": (tokens - tokens_before) / elapsed if elapsed > 0 else float("nan"),
        "input_scale": sae.input_scale,
        "outlier_max_norm": max_norm if math.isfinite(max_norm) else None,
        **calibration,
        "resumed_from_step": start_step,
        "final": final._asdict() if final else None,
        "history": history,
    }
    sae.save(out_dir, metadata=metadata)
    if ckpt_path.is_file():
        ckpt_path.unlink()
    if tracker:
        tracker.summary({k: v for k, v in (final._asdict() if final else {}).items()})
    return TrainResult(sae, metrics)


def save_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    write_json(path, metrics)
