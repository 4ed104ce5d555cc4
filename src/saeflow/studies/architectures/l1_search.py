"""ReLU + L1 at matched L0: search the L1 coefficient λ whose trained SAE has the reference's L0 (rule
`l1_search` of workflow/rules/studies/architectures.smk; the `arch-relu` training then reads λ from its output
through ``extra.l1_search``, saeflow.sae.relu).

The search trains the arch-relu spec itself with candidate coefficients, by default for as many tokens as the
real training (``tokens: null``): the same seed and data order, so the last probe is the SAE the training
step will produce and its L0 carries over exactly; ``tokens`` shortens the probes for large runs, at the
price of that guarantee. L0 falls as λ grows, roughly as a power of λ, so the search works on log λ and log
L0:

1. Probe the spec's own λ (``initial`` overrides it).
2. Until the target is bracketed (one probe above, one below), step log λ by ``log(expand)`` towards it.
3. Inside the bracket, interpolate log L0 linearly in log λ (regula falsi), keeping the bracket; when the same
   end of the bracket has moved twice in a row (interpolation stalling, e.g. on a jump of L0), take the
   bracket's geometric midpoint instead (bisection in log space).

It stops at the first probe within ``tolerance`` of the target (relative), or after ``max_probes``; the
answer is the probe closest to the target. Every probe (λ, L0, FVU) is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from saeflow.errors import ConfigError


@dataclass(frozen=True)
class L1SearchSettings:
    tokens: int | None = None
    """Training tokens of each probe (None: as many as the real training)."""
    max_probes: int = 8
    tolerance: float = 0.05
    """Stop at a probe whose L0 is within this share of the target (the table's criterion is 10%)."""
    initial: float | None = None
    """First λ tried (None: the spec's l1_coefficient)."""
    expand: float = 4.0
    """Factor by which λ moves while the target is not bracketed."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> L1SearchSettings:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"architectures.l1_search: unknown key(s) {', '.join(unknown)}")
        s = cls(**d)
        if s.max_probes < 1 or not 0 < s.tolerance < 1 or s.expand <= 1:
            raise ConfigError(
                "architectures.l1_search: max_probes ≥ 1, 0 < tolerance < 1 and expand > 1 required; "
                f"got {s.max_probes}, {s.tolerance}, {s.expand}"
            )
        if (s.tokens is not None and s.tokens < 1) or (s.initial is not None and s.initial <= 0):
            raise ConfigError(
                f"architectures.l1_search: tokens and initial must be positive; got {s.tokens}, {s.initial}"
            )
        return s


@dataclass
class L1SearchResult:
    target_l0: float
    l1_coefficient: float
    """The λ of the probe closest to the target (what arch-relu trains with)."""
    l0: float
    """That probe's L0."""
    converged: bool
    """Whether that probe is within the tolerance."""
    probes: list[dict[str, float]] = field(default_factory=list)
    """Every probe in order: {l1_coefficient, l0, ...}."""
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rel_error(l0: float, target: float) -> float:
    return abs(l0 / target - 1)


def search_l1_coefficient(
    probe: Callable[[float], Mapping[str, float]],
    target_l0: float,
    initial: float,
    settings: L1SearchSettings | None = None,
) -> L1SearchResult:
    """Search λ (module docstring) with `probe(λ)` -> {"l0": ..., any other numbers to record}."""
    s = settings or L1SearchSettings()
    if target_l0 <= 0 or initial <= 0:
        raise ConfigError(f"l1 search: target L0 and initial λ must be positive; got {target_l0}, {initial}")
    probes: list[dict[str, float]] = []
    above: tuple[float, float] | None = None  # (log λ, log L0) with L0 > target: λ too small
    below: tuple[float, float] | None = None  # L0 < target: λ too large
    log_t, step = math.log(target_l0), math.log(s.expand)
    log_lam = math.log(initial)
    moved: list[str] = []  # which end of the bracket each probe replaced
    for _ in range(s.max_probes):
        lam = math.exp(log_lam)
        out = dict(probe(lam))
        l0 = float(out["l0"])
        probes.append({"l1_coefficient": lam, **out, "l0": l0})
        if _rel_error(l0, target_l0) <= s.tolerance:
            break
        point = (log_lam, math.log(max(l0, 1e-3)))
        if l0 > target_l0:
            above = point if above is None or point[0] > above[0] else above
            moved.append("above")
        else:
            below = point if below is None or point[0] < below[0] else below
            moved.append("below")
        if above is None:
            log_lam = below[0] - step
        elif below is None:
            log_lam = above[0] + step
        else:
            (a, fa), (b, fb) = above, below
            stalled = len(moved) >= 3 and moved[-1] == moved[-2] == moved[-3]
            if fb == fa or stalled:
                log_lam = (a + b) / 2
            else:
                log_lam = min(max(a + (log_t - fa) * (b - a) / (fb - fa), a), b)
                if log_lam in (a, b):
                    log_lam = (a + b) / 2
    best = min(probes, key=lambda p: _rel_error(p["l0"], target_l0))
    return L1SearchResult(
        target_l0=float(target_l0),
        l1_coefficient=best["l1_coefficient"],
        l0=best["l0"],
        converged=_rel_error(best["l0"], target_l0) <= s.tolerance,
        probes=probes,
        settings=asdict(s),
    )


def run_l1_search(
    spec: Mapping[str, Any],
    store,
    target_l0: float,
    settings: L1SearchSettings,
    out_dir,
    *,
    device: str = "cpu",
) -> L1SearchResult:
    """Train the ReLU spec `spec` (resolved; its ``extra.l1_search`` is ignored) on `store` with candidate λ
    into `out_dir`/probe-<i> (removed after) and return the search."""
    import shutil
    from pathlib import Path

    from saeflow.sae import SAEConfig
    from saeflow.train import TrainConfig, train_sae

    if spec.get("architecture") != "relu":
        raise ConfigError(f"l1 search: the spec must be a relu SAE; got {spec.get('architecture')!r}")
    base = {**spec, "extra": {k: v for k, v in (spec.get("extra") or {}).items() if k != "l1_search"}}
    train_cfg = TrainConfig.from_dict(base)
    if settings.tokens is not None:
        train_cfg = TrainConfig.from_dict({**base, "epochs": settings.tokens / store.n_tokens})
    out_dir = Path(out_dir)
    counter = iter(range(1_000_000))

    def probe(lam: float) -> dict[str, float]:
        cfg = SAEConfig.from_dict({**base, "l1_coefficient": lam, "d_in": store.d_model})
        path = out_dir / f"probe-{next(counter)}"
        result = train_sae(cfg, train_cfg, store, path, device=device)
        shutil.rmtree(path, ignore_errors=True)
        final = result.metrics["final"] or {}
        return {
            "l0": float(final.get("l0", math.nan)),
            "fvu": float(final.get("fvu", math.nan)),
            "steps": int(result.metrics["steps"]),
        }

    initial = settings.initial or float(spec.get("l1_coefficient", 5.0))
    return search_l1_coefficient(probe, target_l0, initial, settings)
