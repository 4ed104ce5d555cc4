"""OrtSAE: BatchTopK + γ·L_orth, the chunked orthogonality penalty on decoder directions (docs/methods.md).

Settings in `extra`: `ortho_gamma` γ (default 0.25, relative to a per-dimension MSE as in the paper: the
penalty is added as γ·d·L_orth because saeflow's reconstruction loss sums the squared error over the d
dimensions; with γ·L_orth alone it was ~10⁻⁴ of the loss and the default run's OrtSAE came out identical to
BatchTopK) and `ortho_chunk` c (latents per random chunk; default
256, see DEFAULT_ORTHO_CHUNK). The penalty costs O(m·c·d) per step against O(B·m·d) for the SAE itself, so its
relative overhead is about c / (2B): c = 256 with B = 1024 keeps it near 10% (`python -m saeflow.bench
ortho`).
"""

from __future__ import annotations

from torch import Tensor

from saeflow.errors import ConfigError
from saeflow.sae.base import SAEConfig, register
from saeflow.sae.batchtopk import BatchTopKSAE
from saeflow.sae.penalties import orthogonality_penalty

DEFAULT_ORTHO_GAMMA = 0.25
DEFAULT_ORTHO_CHUNK = 256


@register
class OrtSAE(BatchTopKSAE):
    name = "ortsae"

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        super().__init__(cfg, input_scale=input_scale)
        self.ortho_gamma = float(cfg.extra.get("ortho_gamma", DEFAULT_ORTHO_GAMMA))
        self.ortho_chunk = int(cfg.extra.get("ortho_chunk") or DEFAULT_ORTHO_CHUNK)
        if self.ortho_gamma < 0 or self.ortho_chunk < 2:
            raise ConfigError(
                f"sae.extra.ortho_gamma must be >= 0 and ortho_chunk >= 2; got "
                f"{self.ortho_gamma}, {self.ortho_chunk}"
            )

    def extra_penalties(self) -> dict[str, Tensor]:
        if self.ortho_gamma == 0:
            return {}
        # γ is relative to a per-dimension MSE (the paper's); our reconstruction loss sums over the d
        # dimensions
        return {
            "ortho": self.ortho_gamma * self.cfg.d_in * orthogonality_penalty(self.W_dec, self.ortho_chunk)
        }
