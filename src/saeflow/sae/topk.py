"""TopK SAE: keep the k largest pre-activations per token (ReLU after), with the AuxK dead-latent loss.

Training uses the sparse kernels of :mod:`saeflow.sae.kernels` by default (one dense matmul per step; every
other product touches only the k active latents per token). ``extra: {fast: false}`` selects the
straightforward dense computation, which gives the same losses and gradients to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from saeflow.sae.base import LossTerms, SparseAutoencoder, register
from saeflow.sae.kernels import Workspace, sparse_decode, to_sparse_latents, topk_encode


def topk_mask_values(pre: Tensor, k: int) -> Tensor:
    """Dense [N, m] tensor holding ReLU of the k largest entries of each row of `pre`, zeros elsewhere."""
    values, indices = pre.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, torch.relu(values))


def aux_k_for(sae: SparseAutoencoder) -> tuple[Tensor | None, int]:
    """(dead mask, k_aux) for AuxK this step; k_aux = 0 when AuxK is off or no latent is dead."""
    cfg = sae.cfg
    if cfg.aux_k_coef == 0:
        return None, 0
    dead = sae.dead_mask()
    n_dead = int(dead.sum())
    if n_dead == 0:
        return None, 0
    return dead, min(cfg.aux_k or cfg.d_in // 2, n_dead)


def _auxk_error(sae: SparseAutoencoder, residual: Tensor, aux_recon: Tensor) -> Tensor:
    err = (aux_recon - residual).pow(2).sum(-1).mean()
    scale = (residual - residual.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-8)
    return sae.cfg.aux_k_coef * err / scale


def auxk_loss(sae: SparseAutoencoder, x: Tensor, pre: Tensor, recon: Tensor) -> Tensor:
    """The top-k_aux dead latents reconstruct the residual x − x̂; normalised by the residual's variance."""
    dead, k_aux = aux_k_for(sae)
    if k_aux == 0:
        return x.new_zeros(())
    residual = (x - recon).detach()
    dead_pre = pre.masked_fill(~dead, float("-inf"))
    aux_latents = topk_mask_values(dead_pre, k_aux)
    return _auxk_error(sae, residual, aux_latents @ sae.W_dec)


def auxk_loss_sparse(
    sae: SparseAutoencoder, x: Tensor, aux_values: Tensor, aux_indices: Tensor, recon: Tensor
) -> Tensor:
    """:func:`auxk_loss` from the [N, k_aux] dead-latent codes of :func:`~saeflow.sae.kernels.topk_encode`."""
    residual = (x - recon).detach()
    return _auxk_error(sae, residual, sparse_decode(aux_values, aux_indices, sae.W_dec))


@register
class TopKSAE(SparseAutoencoder):
    name = "topk"

    @property
    def fast(self) -> bool:
        """Sparse training kernels (default) or the dense reference computation (`extra.fast: false`)."""
        return bool(self.cfg.extra.get("fast", True))

    def activation(self, pre: Tensor) -> Tensor:
        return topk_mask_values(pre, self.cfg.k)

    def training_loss(self, x: Tensor) -> LossTerms:
        """Per-token squared error and AuxK. Fast path: `latents` is a sparse COO [N, m] tensor."""
        if not self.fast:
            return self.dense_training_loss(x)
        dead, k_aux = aux_k_for(self)
        if "_workspace" not in self.__dict__:
            self.__dict__["_workspace"] = Workspace()  # plain attribute: never saved, copied or moved
        codes = topk_encode(
            x,
            self.W_enc,
            self.b_enc,
            self.b_dec,
            self.cfg.k,
            dead=dead,
            k_aux=k_aux,
            workspace=self.__dict__["_workspace"],
            select_dtype=self.select_dtype,
        )
        recon = sparse_decode(codes.values, codes.indices, self.W_dec) + self.b_dec
        mse = (recon - x).pow(2).sum(dim=-1)
        if k_aux:
            aux = auxk_loss_sparse(self, x, codes.aux_values, codes.aux_indices, recon)
        else:
            aux = x.new_zeros(())
        latents = to_sparse_latents(codes.values.detach(), codes.indices, self.cfg.d_sae)
        logs = {"mse": mse.mean().item(), "sparsity": 0.0, "aux": float(aux.detach())}
        return LossTerms(mse, aux, latents, recon, logs)

    def dense_training_loss(self, x: Tensor) -> LossTerms:
        """The straightforward computation: dense [N, m] latents and matmuls (the kernels' reference)."""
        pre = self.pre_acts(x)
        f = self.activation(pre)
        recon = self.decode(f)
        mse = (recon - x).pow(2).sum(dim=-1)
        aux = auxk_loss(self, x, pre, recon)
        logs = {"mse": mse.mean().item(), "sparsity": 0.0, "aux": float(aux.detach())}
        return LossTerms(mse, aux, f, recon, logs)
