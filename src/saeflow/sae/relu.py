"""Standard ReLU SAE with the decoder-norm-weighted L1 penalty: λ Σ_i |f_i|·‖W_dec,i‖."""

from __future__ import annotations

import torch
from torch import Tensor

from saeflow.sae.base import SparseAutoencoder, register


@register
class ReluSAE(SparseAutoencoder):
    name = "relu"
    uses_k = False
    unit_norm_decoder = False

    def initial_decoder_norm(self) -> float:
        return 0.1

    def activation(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def sparsity_per_token(self, latents: Tensor) -> Tensor:
        return self.cfg.l1_coefficient * (latents.abs() @ self.W_dec.norm(dim=1))
