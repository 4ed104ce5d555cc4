"""SAE trainer: Adam with warm-up and linear decay, input scaling, decoder-norm handling, ERM/TERM,
periodic checkpoints to `<out_dir>/.checkpoint/` and resume after a kill, metrics always written to JSON.

A checkpoint is a folder `.checkpoint/state/` holding `tensors.safetensors` (SAE, optimizer and metric state)
and `state.json` (step, history, RNG state, the hash of the training spec it belongs to); nothing is
unpickled. A checkpoint of another spec (say a changed `lr`) or one that cannot be read is discarded with a
log line and training starts over; a pickle left at the old path `.checkpoint/state.pt` is removed unread.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors.torch import load_file, save_file

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError, DataError
from saeflow.io import atomic_path
from saeflow.metrics import ReconstructionAccumulator
from saeflow.optim import adam
from saeflow.outliers import DEFAULT_OUTLIER_RATIO, inlier_mean, outlier_threshold
from saeflow.runtime import file_sha256
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
    monitor_every: int = 0
    """Steps between held-out points of the training curve (FVU and L0 on the monitor set; 0 = none)."""
    outlier_norm_ratio: float = DEFAULT_OUTLIER_RATIO
    """Rows with a norm above this × the median norm are not trained on (saeflow.outliers; ≤ 0 keeps all)."""
    snapshots: int = 0
    """Evenly spaced weight snapshots kept in `<out_dir>/snapshots/` (TracIn's checkpoints; 0 = none). Taking
    them changes nothing in training."""

    def __post_init__(self):
        if self.batch_size < 1 or self.lr <= 0 or self.epochs <= 0:
            raise ConfigError(
                f"train: batch_size, lr and epochs must be positive; got {self.batch_size}, {self.lr}, "
                f"{self.epochs}"
            )
        if self.tilt < 0:
            raise ConfigError(f"train.tilt must be >= 0; got {self.tilt}")
        if self.snapshots < 0:
            raise ConfigError(f"train.snapshots must be >= 0; got {self.snapshots}")

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


SNAPSHOT_DIR = "snapshots"


def snapshot_steps(total: int, count: int) -> list[int]:
    """The steps after which the `count` snapshots are taken: evenly spaced, the last at the end."""
    return sorted({max(1, round(total * (i + 1) / count)) for i in range(count)}) if count else []


def mean_lr(start: int, end: int, total: int, cfg: TrainConfig) -> float:
    """Mean learning rate of steps start .. end − 1 (the interval a snapshot closes)."""
    steps = range(start, end)
    return cfg.lr * sum(_lr_factor(s, total, cfg) for s in steps) / max(len(steps), 1)


def _snapshot_path(out_dir: Path, step: int) -> Path:
    return out_dir / SNAPSHOT_DIR / f"step_{step:07d}.safetensors"


def _save_snapshot(out_dir: Path, sae: SparseAutoencoder, step: int) -> None:
    """Weights of one snapshot, in the raw activation scale as a saved SAE's (input scale: cfg.json)."""
    path = _snapshot_path(out_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {k: v.float().cpu().contiguous() for k, v in sae.weights_for_saving().items()}
    with atomic_path(path) as tmp:
        save_file(weights, str(tmp))


def _snapshot_entry(
    out_dir: Path, step: int, snapshot_at: list[int], total: int, cfg: TrainConfig
) -> dict[str, Any]:
    """Its entry in metrics.json's `snapshots`: the mean learning rate of the steps since the previous one
    (TracIn's η), the file (relative to the SAE folder) and its sha256."""
    path = _snapshot_path(out_dir, step)
    if not path.is_file():
        raise DataError(f"{path}: snapshot missing after training (removed while training ran?)")
    previous = max([0, *(s for s in snapshot_at if s < step)])
    return {
        "step": step,
        "lr": mean_lr(previous, step, total, cfg),
        "file": f"{SNAPSHOT_DIR}/{path.name}",
        "sha256": file_sha256(path),
    }


def _init_decoder_bias(
    sae: SparseAutoencoder, store: ActivationStore, scale: float, seed: int, max_norm: float
) -> None:
    """b_dec starts at the mean activation (a cheap stand-in for the geometric median)."""
    batch = next(store.iter_batches(min(8192, store.n_tokens), shuffle=True, seed=seed, max_norm=max_norm))
    with torch.no_grad():
        sae.b_dec.copy_(batch.mean(0) * scale)


CHECKPOINT_FORMAT = "saeflow-checkpoint/2"
_LEGACY_CHECKPOINT = "state.pt"  # pickled by saeflow < 0.x: never loaded, removed


def checkpoint_dir(out_dir: str | Path) -> Path:
    """Where `train_sae` keeps its resume state for `out_dir` (undeclared in the workflow, removed when
    done)."""
    return Path(out_dir) / ".checkpoint" / "state"


def training_spec_hash(
    sae_cfg: SAEConfig, train_cfg: TrainConfig, store: ActivationStore, init_from: str | Path | None = None
) -> str:
    """sha256 of everything that decides the trained weights: architecture, optimisation settings (not how
    often to checkpoint), the activation set (manifest without timings) and the parent SAE's weights when
    finetuning."""
    train = dataclasses.asdict(train_cfg)
    train.pop("checkpoint_every")
    acts = {k: v for k, v in store.manifest.to_dict().items() if k not in ("elapsed_s", "tokens_per_s")}
    parent = None
    if init_from is not None:
        weights = Path(init_from) / "sae_weights.safetensors"
        parent = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else str(init_from)
    spec = {
        "format": CHECKPOINT_FORMAT,
        "sae": sae_cfg.to_dict(),
        "train": train,
        "acts": acts,
        "parent": parent,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _rng_to_json(state: torch.Tensor) -> str:
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def _rng_from_json(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text, validate=True)), dtype=torch.uint8).clone()


def _tail_state(tail: ReconstructionAccumulator) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The streaming metric accumulator as JSON numbers + tensors (its fields are metrics.py's; kept in
    step)."""
    m = tail._moments
    info = {"n": m.n, "n_active": tail._n_active, "dense_threshold": tail.dense_threshold}
    tensors = {
        f"tail.{k}": v
        for k, v in (("mean", m.mean), ("m2", m.m2), ("sq_err", m.sq_err), ("fire_counts", tail._fire_counts))
        if v is not None
    }
    return info, tensors


def _tail_from_state(
    info: dict[str, Any], tensors: dict[str, torch.Tensor], device: str
) -> ReconstructionAccumulator:
    tail = ReconstructionAccumulator(float(info["dense_threshold"]))
    m = tail._moments
    m.n, tail._n_active = int(info["n"]), int(info["n_active"])
    if m.n:
        m.mean, m.m2, m.sq_err = (tensors[f"tail.{k}"].to(device) for k in ("mean", "m2", "sq_err"))
        tail._fire_counts = tensors["tail.fire_counts"].to(device)
    return tail


class CurvePoint(NamedTuple):
    step: int
    tokens: int
    fvu: float
    l0: float


def _save_checkpoint(
    path: Path,
    sae,
    opt,
    step: int,
    spec_hash: str,
    history: list[dict[str, float]],
    tail: ReconstructionAccumulator,
    tokens: int,
    curve: list[CurvePoint],
) -> None:
    """Everything a resumed run needs to continue exactly as if never stopped (RNG state included: some
    architectures draw random numbers in their loss, e.g. OrtSAE's chunk partition)."""
    tensors = {f"sae.{k}": v for k, v in sae.state_dict().items()}
    tensors["since_fired"] = sae.tokens_since_fired
    for idx, pstate in opt.state_dict()["state"].items():
        for key, value in pstate.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {key!r} is not a tensor; the checkpoint cannot hold it")
            tensors[f"opt.{idx}.{key}"] = value
    tail_info, tail_tensors = _tail_state(tail)
    tensors.update(tail_tensors)
    rng = {"cpu": _rng_to_json(torch.get_rng_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = [_rng_to_json(s) for s in torch.cuda.get_rng_state_all()]
    state = {
        "format": CHECKPOINT_FORMAT,
        "spec_hash": spec_hash,
        "step": step,
        "scale": sae.input_scale,
        "tokens": tokens,
        "history": history,
        "curve": [p._asdict() for p in curve],
        "tail": tail_info,
        "rng": rng,
    }
    with atomic_path(path, is_dir=True) as tmp:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors")
        )
        (tmp / "state.json").write_text(json.dumps(state, sort_keys=True) + "\n")


class _Resume(NamedTuple):
    step: int
    history: list[dict[str, float]]
    tail: ReconstructionAccumulator
    tokens: int
    curve: list[CurvePoint]


def _discard(path: Path, why: str) -> None:
    log.warning("discarding checkpoint %s: %s; training starts over", path, why)
    shutil.rmtree(path, ignore_errors=True)


def _read_checkpoint(path: Path, sae, opt, spec_hash: str, device: str) -> _Resume | None:
    """Restore `sae`/`opt`/RNG from the checkpoint at `path` if it belongs to `spec_hash` and is whole; else
    None.

    Everything is read and checked before anything is applied, so a bad checkpoint leaves the fresh run
    intact."""
    legacy = path.parent / _LEGACY_CHECKPOINT
    if legacy.exists():
        log.warning("removing %s unread: pickled checkpoints are not loaded (they could run code)", legacy)
        legacy.unlink()
    if not path.exists():
        return None
    try:
        state = json.loads((path / "state.json").read_text())
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"state.json is not a {CHECKPOINT_FORMAT} record")
        if state.get("spec_hash") != spec_hash:
            log.warning(
                "discarding checkpoint %s: it belongs to another training spec (hash %.12s, this run "
                "%.12s: a setting or the activations changed); training starts over",
                path,
                state.get("spec_hash"),
                spec_hash,
            )
            shutil.rmtree(path, ignore_errors=True)
            return None
        tensors = load_file(str(path / "tensors.safetensors"))
        sae_state = {k: tensors[f"sae.{k}"] for k in sae.state_dict()}
        for k, ref in sae.state_dict().items():
            if sae_state[k].shape != ref.shape or sae_state[k].dtype != ref.dtype:
                raise ValueError(f"sae.{k} has shape {list(sae_state[k].shape)}, expected {list(ref.shape)}")
        since = tensors["since_fired"]
        if since.shape != sae.tokens_since_fired.shape:
            raise ValueError(
                f"since_fired has shape {list(since.shape)}, expected {list(sae.tokens_since_fired.shape)}"
            )
        fresh = opt.state_dict()
        params = [p for group in opt.param_groups for p in group["params"]]
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for name, value in tensors.items():
            if name.startswith("opt."):
                _, idx, key = name.split(".", 2)
                opt_state.setdefault(int(idx), {})[key] = value
        for idx, pstate in opt_state.items():
            for key, value in pstate.items():
                if key != "step" and value.shape != params[idx].shape:
                    raise ValueError(
                        f"optimizer {key} of parameter {idx} has shape {list(value.shape)}, "
                        f"expected {list(params[idx].shape)}"
                    )
        tail = _tail_from_state(state["tail"], tensors, device)
        step, tokens, scale = int(state["step"]), int(state["tokens"]), float(state["scale"])
        history = list(state["history"])
        curve = [CurvePoint(**point) for point in state.get("curve", [])]
        rng = _rng_from_json(state["rng"]["cpu"])
        cuda_rng = [_rng_from_json(s) for s in state["rng"].get("cuda", [])]
    except Exception as err:  # noqa: BLE001 - a cache that cannot be read is discarded, whatever the reason
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        _discard(path, f"cannot be read ({type(err).__name__}: {reason})")
        return None
    try:
        sae.load_state_dict(sae_state)
        sae.tokens_since_fired.copy_(since)
        opt.load_state_dict({"state": opt_state, "param_groups": fresh["param_groups"]})
        sae.input_scale = scale
        torch.set_rng_state(rng)
        if cuda_rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_rng)
    except Exception as err:  # noqa: BLE001
        shutil.rmtree(path, ignore_errors=True)
        raise DataError(
            f"checkpoint {path} could not be applied ({err}); it was removed: rerun to start over"
        ) from None
    return _Resume(step, history, tail, tokens, curve)


def _l0(latents: torch.Tensor) -> float:
    """Mean active latents per token, for dense or sparse COO [N, m] latents."""
    if latents.is_sparse:
        return float((latents._values() > 0).sum()) / max(latents.shape[0], 1)
    return float((latents > 0).sum(-1).float().mean())


MONITOR_ROWS = 8192
"""Held-out rows scored at each point of the training curve."""


@torch.no_grad()
def heldout_point(sae: SparseAutoencoder, rows: torch.Tensor, step: int, tokens: int) -> CurvePoint:
    """FVU and L0 of the SAE on held-out rows already in its input scale (no state changes)."""
    acc = ReconstructionAccumulator()
    for chunk in rows.split(4096):
        latents, recon = sae(chunk)
        acc.update(chunk, recon, coalesce_latents(latents))
    result = acc.result()
    return CurvePoint(step, tokens, result.fvu, result.l0)


def plateau_gain(curve: list[CurvePoint], tail: float = 0.25) -> float | None:
    """Relative held-out FVU improvement over the last `tail` share of training tokens:
    (FVU at (1 - tail) of the tokens − final FVU) / FVU at (1 - tail); None with fewer than two points."""
    if len(curve) < 2:
        return None
    final = curve[-1]
    cut = final.tokens * (1 - tail)
    earlier = [p for p in curve if p.tokens <= cut] or curve[:1]
    ref = earlier[-1].fvu
    return (ref - final.fvu) / ref if ref > 0 else None


def train_sae(
    sae_cfg: SAEConfig,
    train_cfg: TrainConfig,
    store: ActivationStore,
    out_dir: str | Path,
    *,
    monitor: ActivationStore | None = None,
    init_from: str | Path | None = None,
    tracker: Tracker | None = None,
    metadata: dict[str, Any] | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train (or finetune, with `init_from`) an SAE on a stored activation set; save it into `out_dir`."""
    out_dir = Path(out_dir)
    ckpt_path = checkpoint_dir(out_dir)
    if sae_cfg.d_in != store.d_model:
        raise ConfigError(
            f"sae.d_in ({sae_cfg.d_in}) does not match the activations' d_model ({store.d_model})"
        )
    torch.manual_seed(train_cfg.seed)
    norms = store.sample_norms(seed=train_cfg.seed)  # one read of the sample: outlier cut and input scale
    max_norm = outlier_threshold(norms, train_cfg.outlier_norm_ratio)
    sae = make_sae(sae_cfg, seed=train_cfg.seed)
    if init_from is not None:
        parent = load_sae(init_from)
        sae.load_saved_weights(parent.weights_for_saving(), input_scale=1.0)
        sae.continue_from_(parent)
        # Finetuning keeps the parent's input scale so its learned features mean the same thing.
        scale = json.loads((Path(init_from) / "cfg.json").read_text())["saeflow"]["input_scale"]
        sae.set_input_scale_(scale)
    else:
        scale = math.sqrt(store.d_model) / max(inlier_mean(norms, max_norm), 1e-8)
        sae.input_scale = scale
        _init_decoder_bias(sae, store, scale, train_cfg.seed, max_norm)
    sae.to(device)
    opt = adam(sae.parameters(), train_cfg.lr, device)
    total_steps = max(1, math.ceil(store.n_tokens * train_cfg.epochs / train_cfg.batch_size))

    start_step = 0
    history: list[dict[str, float]] = []
    curve: list[CurvePoint] = []
    tail = ReconstructionAccumulator()
    tokens = 0
    spec_hash = training_spec_hash(sae_cfg, train_cfg, store, init_from)
    resume = _read_checkpoint(ckpt_path, sae, opt, spec_hash, device)
    if resume is not None:
        start_step, history, tail, tokens, curve = resume
        log.info("resuming from %s at step %d/%d", ckpt_path, start_step, total_steps)
    else:
        shutil.rmtree(out_dir / SNAPSHOT_DIR, ignore_errors=True)  # another run's snapshots are never kept
    snapshot_at = snapshot_steps(total_steps, train_cfg.snapshots)

    batches = store.iter_batches(
        train_cfg.batch_size,
        shuffle=True,
        seed=train_cfg.seed,
        epochs=math.ceil(train_cfg.epochs),
        max_norm=max_norm,
    )
    tail_from = int(total_steps * 0.9)
    monitor_rows = None
    if monitor is not None and train_cfg.monitor_every > 0:
        rows = next(monitor.iter_batches(MONITOR_ROWS, shuffle=True, seed=train_cfg.seed, max_norm=max_norm))
        monitor_rows = rows.to(device) * sae.input_scale
        if resume is None:
            curve.append(heldout_point(sae, monitor_rows, 0, 0))
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
        if monitor_rows is not None and (
            (step + 1) % train_cfg.monitor_every == 0 or step == total_steps - 1
        ):
            curve.append(heldout_point(sae, monitor_rows, step + 1, tokens))
        if step + 1 in snapshot_at:
            _save_snapshot(out_dir, sae, step + 1)
        if train_cfg.checkpoint_every and (step + 1) % train_cfg.checkpoint_every == 0:
            _save_checkpoint(ckpt_path, sae, opt, step + 1, spec_hash, history, tail, tokens, curve)
    elapsed = time.perf_counter() - t0
    calibration = {}
    if hasattr(
        sae, "calibrate_threshold_"
    ):  # BatchTopK family: set the inference threshold on held-back rows
        sample = next(
            store.iter_batches(
                min(8192, store.n_tokens), shuffle=True, seed=train_cfg.seed + 1, max_norm=max_norm
            )
        )
        ema = float(sae.threshold.mean())
        calibration = {
            "threshold_ema": ema,
            "threshold": sae.calibrate_threshold_(sample.to(device) * sae.input_scale),
        }
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
    if snapshot_at:
        metrics["snapshots"] = [
            _snapshot_entry(out_dir, step, snapshot_at, total_steps, train_cfg) for step in snapshot_at
        ]
    if curve:
        metrics["curve"] = [p._asdict() for p in curve]
        metrics["plateau_gain"] = plateau_gain(curve)
    sae.save(out_dir, metadata=metadata)
    shutil.rmtree(ckpt_path, ignore_errors=True)
    if tracker:
        tracker.summary({k: v for k, v in (final._asdict() if final else {}).items()})
    return TrainResult(sae, metrics)
