"""Massive-activation tokens: residual vectors whose norm is many times the typical one.

Besides position 0, small LMs park attention-sink tokens (e.g. SmolLM2-135M: a few tokens per thousand at
positions 1-2, norm ≈ 24,000 against a median ≈ 175 at layer 15) in the residual stream. Under a squared-error
loss four such rows in 8,192 outweigh all the others together, so an SAE trained on them spends its capacity
on them and the mean FVU is meaningless. saeflow treats them like position 0: a row whose norm exceeds
`ratio` × the median norm is not trained on, not spliced and not scored. `ratio` ≤ 0 keeps every row.
"""

from __future__ import annotations

from torch import Tensor

DEFAULT_OUTLIER_RATIO = 10.0


def outlier_threshold(norms: Tensor, ratio: float) -> float:
    """ratio × median of `norms` (inf when ratio ≤ 0 or there are no norms: nothing is an outlier)."""
    if ratio <= 0 or norms.numel() == 0:
        return float("inf")
    return float(ratio) * float(norms.float().median())


def inlier_mask(x: Tensor, threshold: float) -> Tensor:
    """[...] bool: rows of x [..., d] whose L2 norm is at most `threshold`."""
    return x.float().norm(dim=-1) <= threshold


def inlier_mean(norms: Tensor, threshold: float) -> float:
    """Mean of the `norms` at most `threshold` (0.0 when none is)."""
    kept = norms[norms <= threshold]
    return float(kept.mean()) if len(kept) else 0.0
