"""Standard ReLU SAE with the decoder-norm-weighted L1 penalty: λ Σ_i |f_i|·‖W_dec,i‖.

`extra.target_l0` (optional): λ is steered during training so that L0 lands on the target. After each
step log λ moves by `l1_rate` × clip(log(L0_ema / target), ±1), L0_ema being an exponential average (decay
0.9) of the batch L0; λ starts at `l1_coefficient` and is held there until L0_ema first falls within a factor
2 of the target or for `l1_hold_steps` steps (default 500), whichever comes first: an untrained SAE fires on
half of its latents whatever λ is, and raising λ then collapses the decoder norms instead of sparsifying the
codes (λ ≥ 20 from the first step gave L0 ≈ 1,800 in an earlier default run's search). The λ in use at the
end is saved as the SAE's `l1_coefficient` (cfg.json) and logged at every step (`l1`). A fixed λ cannot hit a
target L0 from a short search: L0 keeps falling as training goes on (default run: λ = 5 gave L0 63 after
500k tokens and 17 after 2M), so a coefficient found on short probes misses; the controller follows that
drift instead.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from saeflow.errors import ConfigError
from saeflow.sae.base import LossTerms, SAEConfig, SparseAutoencoder, register
from saeflow.sae.kernels import Workspace, flat_decode, relu_encode

DEFAULT_L1_RATE = 0.02
"""Largest change of log λ per step (≈ 2%): λ can double in 35 steps, or halve."""
L0_EMA_DECAY = 0.9
DEFAULT_L1_HOLD_STEPS = 500
SPARSE_PATH_MAX_DENSITY = 0.05
"""Training takes the flat sparse kernels (saeflow.sae.kernels.relu_encode) when the previous step's L0 was
below this share of the latents (dense early on, when half of them fire); `extra.fast: false` never does."""


@register
class ReluSAE(SparseAutoencoder):
    name = "relu"
    uses_k = False
    unit_norm_decoder = False

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        super().__init__(cfg, input_scale=input_scale)
        target = cfg.extra.get("target_l0")
        self.target_l0 = None if target is None else float(target)
        self.l1_rate = float(cfg.extra.get("l1_rate", DEFAULT_L1_RATE))
        if self.target_l0 is not None and not 0 < self.target_l0 <= cfg.d_sae:
            raise ConfigError(f"sae.extra.target_l0 must be in (0, d_sae={cfg.d_sae}]; got {target}")
        if self.l1_rate <= 0 or cfg.l1_coefficient <= 0:
            raise ConfigError(
                f"sae.extra.l1_rate and sae.l1_coefficient must be positive; got {self.l1_rate}, "
                f"{cfg.l1_coefficient}"
            )
        self.register_buffer("log_l1", torch.tensor(math.log(cfg.l1_coefficient), dtype=torch.float64))
        self.hold_steps = int(cfg.extra.get("l1_hold_steps", DEFAULT_L1_HOLD_STEPS))
        self.register_buffer("l0_ema", torch.tensor(-1.0, dtype=torch.float64))
        self.register_buffer("l1_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("l1_engaged", torch.zeros((), dtype=torch.bool))
        self.register_buffer("last_l0", torch.tensor(float(cfg.d_sae), dtype=torch.float64))
        """The previous training step's L0: picks the dense or the sparse path (in checkpoints, so a resumed
        run takes the same path as an uninterrupted one)."""
        self.fast = bool(cfg.extra.get("fast", True))

    @property
    def l1_coefficient(self) -> float:
        """λ in use: the config's, or the controller's current value with a target L0."""
        return float(self.log_l1.exp())

    def initial_decoder_norm(self) -> float:
        return 0.1

    def activation(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def sparsity_per_token(self, latents: Tensor) -> Tensor:
        return self.l1_coefficient * (latents.abs() @ self.W_dec.norm(dim=1))

    def training_loss(self, x: Tensor) -> LossTerms:
        sparse = self.fast and float(self.last_l0) < SPARSE_PATH_MAX_DENSITY * self.cfg.d_sae
        terms = self.sparse_training_loss(x) if sparse else super().training_loss(x)
        latents = terms.latents
        nnz = (latents._values() > 0).sum() if latents.is_sparse else (latents.detach() > 0).sum()
        batch_l0 = nnz.double() / max(x.shape[0], 1)
        self.last_l0.copy_(batch_l0)
        terms.logs["l1"] = self.l1_coefficient
        if self.target_l0 is not None:
            self.steer_l1_(batch_l0)
        return terms

    def sparse_training_loss(self, x: Tensor) -> LossTerms:
        """The base training loss from flat codes of the positive latents (the same numbers to float
        rounding); `latents` is a sparse COO [N, m] tensor."""
        if "_workspace" not in self.__dict__:
            self.__dict__["_workspace"] = Workspace()  # plain attribute: never saved, copied or moved
        codes = relu_encode(
            x,
            self.W_enc,
            self.b_enc,
            self.b_dec,
            workspace=self.__dict__["_workspace"],
            select_dtype=self.select_dtype,
        )
        recon = flat_decode(codes.values, codes, self.W_dec) + self.b_dec
        mse = (recon - x).pow(2).sum(dim=-1)
        # index_select, not [...]: its backward is a deterministic index_add (indexing's is not on CPU)
        weighted = codes.values * self.W_dec.norm(dim=1).index_select(0, codes.latents)
        sparsity = self.l1_coefficient * x.new_zeros(x.shape[0]).index_add(0, codes.rows, weighted)
        logs = {"mse": mse.mean().item(), "sparsity": sparsity.mean().item(), "aux": 0.0}
        return LossTerms(mse + sparsity, x.new_zeros(()), codes.to_sparse(self.cfg.d_sae), recon, logs)

    @torch.no_grad()
    def continue_from_(self, parent: SparseAutoencoder) -> None:
        """A finetune goes on with the parent's final λ, the controller engaged (no hold)."""
        if isinstance(parent, ReluSAE):
            self.log_l1.copy_(parent.log_l1)
            self.l1_engaged.fill_(True)

    @torch.no_grad()
    def steer_l1_(self, batch_l0: Tensor) -> None:
        """One controller step (module docstring) from this batch's mean L0."""
        first = bool(self.l0_ema < 0)
        self.l0_ema.copy_(batch_l0 if first else L0_EMA_DECAY * self.l0_ema + (1 - L0_EMA_DECAY) * batch_l0)
        self.l1_steps += 1
        if not bool(self.l1_engaged):
            near = bool(self.l0_ema <= 2 * self.target_l0)
            self.l1_engaged.fill_(near or int(self.l1_steps) >= self.hold_steps)
        if bool(self.l1_engaged):
            error = torch.log(self.l0_ema.clamp_min(1e-3) / self.target_l0).clamp(-1.0, 1.0)
            self.log_l1.add_(self.l1_rate * error)

    def save(self, out_dir, metadata=None) -> None:
        """cfg.json records the λ in use as `l1_coefficient` (with a target: the controller's last value)."""
        trained = self.cfg
        self.cfg = dataclasses.replace(trained, l1_coefficient=self.l1_coefficient)
        try:
            super().save(out_dir, metadata)
        finally:
            self.cfg = trained
