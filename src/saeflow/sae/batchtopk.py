"""BatchTopK SAE: in training keep the k·B largest activations of the whole batch of B tokens; at inference a
per-token threshold θ (EMA of the smallest kept activation) replaces the batch selection, JumpReLU-style.

θ is a buffer saved as `threshold` ([d_sae], one shared value, the layout of a JumpReLU threshold) so a loaded
SAE is a per-token function; cfg.json names it "jumprelu" for SAELens, which is what it is at inference.
Latent values do not depend on the input scale, so θ needs no rescaling on save. Settings in `extra`:
`threshold_decay` (EMA decay per step, default 0.99: short CPU runs have a few hundred steps, so the
paper-scale 0.999 would still remember initialisation at the end).
"""

from __future__ import annotations

import torch
from torch import Tensor

from saeflow.sae.base import LossTerms, SAEConfig, SparseAutoencoder, register
from saeflow.sae.kernels import FlatCodes, Workspace, batch_topk_encode, flat_decode
from saeflow.sae.topk import aux_k_for, auxk_loss_sparse

DEFAULT_THRESHOLD_DECAY = 0.99


def batch_topk_mask_values(pre: Tensor, k: int) -> Tensor:
    """Dense [N, m] tensor with ReLU of the k·N largest entries of the whole batch, zeros elsewhere
    (reference)."""
    n, m = pre.shape
    flat = torch.relu(pre).reshape(-1)
    values, indices = flat.topk(min(k * n, flat.numel()), sorted=False)
    return torch.zeros_like(flat).scatter_(0, indices, values).view(n, m)


@register
class BatchTopKSAE(SparseAutoencoder):
    name = "batchtopk"

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        super().__init__(cfg, input_scale=input_scale)
        self.register_buffer("threshold", torch.zeros(cfg.d_sae))
        self.register_buffer("threshold_updates", torch.zeros((), dtype=torch.long))
        self.threshold_decay = float(cfg.extra.get("threshold_decay", DEFAULT_THRESHOLD_DECAY))

    # inference: per token
    def activation(self, pre: Tensor) -> Tensor:
        return torch.relu(pre) * (pre > self.threshold).to(pre.dtype)

    # training: over the batch, with sparse codes
    def encoder_centre(self) -> Tensor:
        """What the encoder subtracts from x (b_dec; a residual SAE uses a fixed centring instead)."""
        return self.b_dec

    def training_codes(self, x: Tensor, dead: Tensor | None, k_aux: int) -> FlatCodes:
        if "_workspace" not in self.__dict__:
            self.__dict__["_workspace"] = Workspace()  # plain attribute: never saved, copied or moved
        codes = batch_topk_encode(
            x,
            self.W_enc,
            self.b_enc,
            self.encoder_centre(),
            self.cfg.k,
            dead=dead,
            k_aux=k_aux,
            workspace=self.__dict__["_workspace"],
            select_dtype=self.select_dtype,
        )
        self.update_threshold_(codes.values.detach())
        return codes

    @torch.no_grad()
    def update_threshold_(self, values: Tensor) -> None:
        """θ ← decay·θ + (1 − decay)·(smallest kept positive activation); the first update sets θ."""
        kept = values[values > 0]
        if kept.numel() == 0:
            return
        smallest = kept.min().to(self.threshold.dtype)
        if int(self.threshold_updates) == 0:
            self.threshold.fill_(smallest)
        else:
            self.threshold.mul_(self.threshold_decay).add_((1 - self.threshold_decay) * smallest)
        self.threshold_updates += 1

    @torch.no_grad()
    def calibrate_threshold_(self, x: Tensor) -> float:
        """θ ← the smallest of the k·N largest activations over a sample x [N, d] (training scale), so that
        the per-token inference L0 on it is k: the training-time EMA lags behind the shrinking activations of
        a short run (default run: inference L0 12.8 for k = 32 with the EMA). Returns the new θ."""
        acts = torch.relu(self.pre_acts(x)).flatten()
        n_keep = min(self.cfg.k * x.shape[0], acts.numel())
        smallest = acts.topk(n_keep, sorted=False).values.min()
        if smallest > 0:
            self.threshold.fill_(float(smallest))
        return float(self.threshold.mean())

    # loss, split so that subclasses change one piece
    def decoder_offset(self) -> Tensor:
        """What decoding adds to the latents' sum (b_dec; a residual SAE adds nothing)."""
        return self.b_dec

    def decode_codes(self, values: Tensor, codes: FlatCodes) -> Tensor:
        """x̂ from `values` on the entries of `codes` (codes.values, or a part of them)."""
        return flat_decode(values, codes, self.W_dec) + self.decoder_offset()

    def reconstruction_terms(self, codes: FlatCodes, target: Tensor) -> tuple[Tensor, Tensor]:
        """(x̂ [N, d], per-token reconstruction loss [N]); Matryoshka replaces the loss by its prefix mean."""
        recon = self.decode_codes(codes.values, codes)
        return recon, (recon - target).pow(2).sum(dim=-1)

    def extra_penalties(self) -> dict[str, Tensor]:
        """Batch-level penalties (already weighted) added to the auxiliary loss, by name (for the logs)."""
        return {}

    def loss_against(self, x: Tensor, target: Tensor) -> LossTerms:
        """Training terms for input x reconstructing `target` (x itself, or a residual for boosted SAEs)."""
        dead, k_aux = aux_k_for(self)
        codes = self.training_codes(x, dead, k_aux)
        recon, per_token = self.reconstruction_terms(codes, target)
        if k_aux:
            aux_k = auxk_loss_sparse(self, target, codes.aux_values, codes.aux_indices, recon)
        else:
            aux_k = x.new_zeros(())
        extras = self.extra_penalties()
        aux = aux_k + sum(extras.values(), x.new_zeros(()))
        latents = codes.to_sparse(self.cfg.d_sae)
        mse = (recon.detach() - target).pow(2).sum(dim=-1).mean().item()
        logs = {
            "mse": mse,
            "loss_recon": per_token.mean().item(),
            "sparsity": 0.0,
            "aux": aux.item(),
            "auxk": aux_k.item(),
            "threshold": float(self.threshold.mean()),
            **{k: v.item() for k, v in extras.items()},
        }
        return LossTerms(per_token, aux, latents, recon, logs)

    def training_loss(self, x: Tensor) -> LossTerms:
        return self.loss_against(x, x)

    # persistence: θ travels with the weights; at inference this is exactly a JumpReLU SAE, which is how
    # SAELens loads BatchTopK-family SAEs (architecture "jumprelu" + a per-latent `threshold`).
    def save(self, out_dir, metadata=None) -> None:
        super().save(out_dir, {"architecture": "jumprelu", "k": self.cfg.k, **(metadata or {})})

    def weights_for_saving(self) -> dict[str, Tensor]:
        return {**super().weights_for_saving(), "threshold": self.threshold.detach().clone().contiguous()}

    def load_saved_weights(self, weights: dict[str, Tensor], input_scale: float) -> None:
        super().load_saved_weights(weights, input_scale)
        if "threshold" in weights:
            with torch.no_grad():
                self.threshold.copy_(weights["threshold"].to(self.threshold.dtype).expand_as(self.threshold))
                self.threshold_updates.fill_(1)
