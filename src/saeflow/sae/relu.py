"""Standard ReLU SAE with the decoder-norm-weighted L1 penalty: λ Σ_i |f_i|·‖W_dec,i‖.

`extra.l1_search` (optional): the path of an L1-coefficient search's JSON
(saeflow.studies.architectures.l1_search); its ``l1_coefficient`` replaces the spec's λ, so that a coefficient
found by a workflow step before training is the one trained with (and the one saved in cfg.json).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import Tensor

from saeflow.errors import DataError
from saeflow.sae.base import SAEConfig, SparseAutoencoder, register


def searched_l1_coefficient(path: str | Path) -> float:
    """λ recorded by an L1-coefficient search (its JSON's ``l1_coefficient``)."""
    try:
        value = json.loads(Path(path).read_text())["l1_coefficient"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(
            f"{path}: no readable l1_coefficient ({type(err).__name__}: {err}); rerun the l1_search step"
        ) from None
    return float(value)


@register
class ReluSAE(SparseAutoencoder):
    name = "relu"
    uses_k = False
    unit_norm_decoder = False

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        source = cfg.extra.get("l1_search")
        if source is not None and Path(source).is_file():  # a saved SAE may outlive the search's file
            cfg = dataclasses.replace(cfg, l1_coefficient=searched_l1_coefficient(source))
        super().__init__(cfg, input_scale=input_scale)

    def initial_decoder_norm(self) -> float:
        return 0.1

    def activation(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def sparsity_per_token(self, latents: Tensor) -> Tensor:
        return self.cfg.l1_coefficient * (latents.abs() @ self.W_dec.norm(dim=1))
