"""TopK SAE: keep the k largest pre-activations per token (ReLU after), with the AuxK dead-latent loss."""

from __future__ import annotations

import torch
from torch import Tensor

from saeflow.sae.base import LossTerms, SparseAutoencoder, register


def topk_mask_values(pre: Tensor, k: int) -> Tensor:
    """Dense [N, m] tensor holding ReLU of the k largest entries of each row of `pre`, zeros elsewhere."""
    values, indices = pre.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, torch.relu(values))


def auxk_loss(sae: SparseAutoencoder, x: Tensor, pre: Tensor, recon: Tensor) -> Tensor:
    """The top-k_aux dead latents reconstruct the residual x − x̂; normalised by the residual's variance."""
    cfg = sae.cfg
    if cfg.aux_k_coef == 0:
        return x.new_zeros(())
    dead = sae.dead_mask()
    n_dead = int(dead.sum())
    if n_dead == 0:
        return x.new_zeros(())
    k_aux = min(cfg.aux_k or cfg.d_in // 2, n_dead)
    residual = (x - recon).detach()
    dead_pre = pre.masked_fill(~dead, float("-inf"))
    aux_latents = topk_mask_values(dead_pre, k_aux)
    aux_recon = aux_latents @ sae.W_dec
    err = (aux_recon - residual).pow(2).sum(-1).mean()
    scale = (residual - residual.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-8)
    return cfg.aux_k_coef * err / scale


@register
class TopKSAE(SparseAutoencoder):
    name = "topk"

    def activation(self, pre: Tensor) -> Tensor:
        return topk_mask_values(pre, self.cfg.k)

    def training_loss(self, x: Tensor):
        pre = self.pre_acts(x)
        f = self.activation(pre)
        recon = self.decode(f)
        mse = (recon - x).pow(2).sum(dim=-1)
        aux = auxk_loss(self, x, pre, recon)
        return LossTerms(mse, aux, f, recon, {"mse": mse.mean().item(), "sparsity": 0.0, "aux": float(aux.detach())})
