"""Is an SAE trained to a plateau? Its training curve (held-out FVU vs tokens, written by the trainer when the
spec has ``monitor_on``) answers it two ways, one row per SAE in results/tables/convergence.csv:

- ``plateau_gain``: the relative held-out FVU improvement over the last quarter of its training tokens;
- for a finetune (``init_from``), ``finetune_gain``: the relative improvement of the monitor set's FVU from
  the parent (the curve's first point, before any step) to the end. For a finetune on more text of the
  parent's own distribution (the SSAE study's ``random`` selection, an architecture's ``-control``) this is
  the convergence control: a converged parent gains at most `CONTROL_TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from saeflow.studies.convergence.specs import control_name

CONTROL_TOLERANCE = 0.01
"""Largest relative FVU gain of a converged SAE finetuned on more of its own training distribution."""


class ConvergenceRow(NamedTuple):
    sae: str
    init_from: str
    train_on: str
    monitor_on: str
    tokens_trained: int
    fvu_start: float
    fvu_final: float
    plateau_gain: float | None
    """Relative held-out FVU gain over the last quarter of training tokens."""
    finetune_gain: float | None
    """For a finetune: relative gain from the parent (first curve point) to the end."""


def relative_gain(before: float, after: float) -> float | None:
    """(before − after) / before: the share of `before`'s FVU removed (negative when it got worse)."""
    return (before - after) / before if before > 0 else None


def convergence_row(name: str, spec: Mapping[str, Any], metrics: Mapping[str, Any]) -> ConvergenceRow | None:
    """The row of one SAE from its resolved spec and its metrics.json; None when it has no curve."""
    curve = metrics.get("curve") or []
    if not curve:
        return None
    parent = spec.get("init_from") or ""
    return ConvergenceRow(
        sae=name,
        init_from=parent,
        train_on=str(spec["train_on"]),
        monitor_on=str(spec.get("monitor_on") or ""),
        tokens_trained=int(metrics["tokens_trained"]),
        fvu_start=float(curve[0]["fvu"]),
        fvu_final=float(curve[-1]["fvu"]),
        plateau_gain=metrics.get("plateau_gain"),
        finetune_gain=relative_gain(curve[0]["fvu"], curve[-1]["fvu"]) if parent else None,
    )


def convergence_table(
    specs: Mapping[str, Mapping[str, Any]], metrics_paths: Mapping[str, str | Path]
) -> pd.DataFrame:
    """One row per SAE with a training curve, in the order of `metrics_paths`."""
    from saeflow.io import read_json

    rows = [convergence_row(n, specs[n], read_json(p)) for n, p in metrics_paths.items()]
    df = pd.DataFrame([r._asdict() for r in rows if r is not None], columns=list(ConvergenceRow._fields))
    return with_controls(df)


def with_controls(df: pd.DataFrame) -> pd.DataFrame:
    """`control_gain`: on an SAE's row, the finetune_gain of its `<sae>-control`; `converged`: whether that is
    at most CONTROL_TOLERANCE (empty when the SAE has no control)."""
    gains = dict(zip(df["sae"], df["finetune_gain"], strict=True))
    control = df["sae"].map(lambda n: gains.get(control_name(n)))
    converged = control.map(lambda g: None if g is None or pd.isna(g) else bool(g <= CONTROL_TOLERANCE))
    return df.assign(control_gain=control, converged=converged)


def plot_training_curves(
    curves: Mapping[str, list[Mapping[str, float]]], out_png: str | Path, title: str = ""
) -> None:
    """Held-out FVU and L0 vs training tokens, one line per SAE trained from scratch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from saeflow.io import atomic_path

    fig, (ax_fvu, ax_l0) = plt.subplots(1, 2, figsize=(11, 4))
    for name, curve in curves.items():
        tokens = [p["tokens"] / 1e6 for p in curve[1:]]  # the untrained point would set the scale
        ax_fvu.plot(tokens, [p["fvu"] for p in curve[1:]], label=name)
        ax_l0.plot(tokens, [p["l0"] for p in curve[1:]], label=name)
    ax_fvu.set(
        xlabel="training tokens (M)", ylabel="held-out FVU", yscale="log", title=title or "training curve"
    )
    # log scale: a ReLU's L0 starts in the thousands while the others sit at k
    ax_l0.set(xlabel="training tokens (M)", ylabel="held-out L0", yscale="log", title="L0")
    ax_fvu.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
