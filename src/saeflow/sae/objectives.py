"""How per-token losses become one minibatch objective: ERM (mean) or Tilted ERM (TERM)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def tilted_risk(per_token: Tensor, tilt: float) -> Tensor:
    """R_t = (1/t) log((1/N) Σ_i exp(t ℓ_i)) via logsumexp; t = 0 is the mean (ERM), t → ∞ the max.

    Its gradient is Σ_i softmax(t ℓ)_i ∇ℓ_i: the worst-reconstructed tokens get the most weight.
    """
    if tilt == 0:
        return per_token.mean()
    n = per_token.shape[0]
    # float64 keeps t·ℓ exact enough for the paper's t = 1e9.
    lse = torch.logsumexp(per_token.double() * tilt, dim=0)
    return ((lse - math.log(n)) / tilt).to(per_token.dtype)


def batch_objective(per_token: Tensor, aux: Tensor, tilt: float = 0.0) -> Tensor:
    return tilted_risk(per_token, tilt) + aux
