"""Matryoshka SAE (BatchTopK base): nested prefixes m_1 < … < m_M = m of the latents each reconstruct x,
x̂^(j) = b_dec + Σ_{i < m_j} f_i W_dec,i, and the per-token loss is mean_j ‖x − x̂^(j)‖² (+ AuxK, batch level).

Prefixes come from `extra.prefixes` (latent counts) or `extra.prefix_fractions` (shares of d_sae, default
1/16, 1/8, 1/4, 1/2, 1); the full width is always the last prefix. Inference is BatchTopK's (threshold θ).
"""

from __future__ import annotations

import itertools

from torch import Tensor

from saeflow.errors import ConfigError
from saeflow.sae.base import SAEConfig, register
from saeflow.sae.batchtopk import BatchTopKSAE
from saeflow.sae.kernels import FlatCodes, block_flat_decode

DEFAULT_PREFIX_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


def prefix_sizes(cfg: SAEConfig) -> list[int]:
    """Strictly increasing prefix sizes ending at d_sae, from extra.prefixes or extra.prefix_fractions."""
    m = cfg.d_sae
    if cfg.extra.get("prefixes") is not None:
        sizes = [int(s) for s in cfg.extra["prefixes"]]
        key = "prefixes"
    else:
        fractions = cfg.extra.get("prefix_fractions", DEFAULT_PREFIX_FRACTIONS)
        if any(not 0 < float(f) <= 1 for f in fractions):
            raise ConfigError(f"sae.extra.prefix_fractions must lie in (0, 1]; got {list(fractions)}")
        sizes = [max(1, round(float(f) * m)) for f in fractions]
        key = "prefix_fractions"
    if not sizes or sizes[-1] != m:
        sizes = [*sizes, m]
    if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1 or sizes[-1] > m:
        raise ConfigError(
            f"sae.extra.{key} must give strictly increasing sizes in [1, d_sae={m}]; got {sizes}"
        )
    return sizes


@register
class MatryoshkaSAE(BatchTopKSAE):
    name = "matryoshka"

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        super().__init__(cfg, input_scale=input_scale)
        self.prefixes = prefix_sizes(cfg)

    def reconstruction_terms(self, codes: FlatCodes, target: Tensor) -> tuple[Tensor, Tensor]:
        """x̂ of the full width and the mean over prefixes of ‖x − x̂^(j)‖²: the blocks' parts of x̂ come from
        one sparse decode (and one sparse backward), each prefix adds its block to the previous one."""
        parts = block_flat_decode(codes, self.W_dec, self.prefixes)
        recon = self.decoder_offset()
        errs = 0
        for part in parts.unbind(dim=1):
            recon = recon + part
            errs = errs + (recon - target).pow(2).sum(dim=-1)
        return recon, errs / len(self.prefixes)
