"""Boosted SAEs: domain adaptation without retraining (docs/methods.md § Boosted / residual SAE).

A frozen base SAE reconstructs x as x̂_base; residual SAEs (saeflow.sae.residual, one per domain, each trained
on its domain's activations to reconstruct e = x − x̂_base with no decoder bias) add their outputs:
x̂ = x̂_base + Σ_r ê_r. :class:`BoostedSAE` is that sum, usable wherever an SAE is evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from saeflow.errors import ConfigError, DataError
from saeflow.sae.base import ForwardOutput, SparseAutoencoder, load_sae
from saeflow.sae.residual import ResidualMixin


class BoostedSAE(nn.Module):
    """x̂ = x̂_base + Σ_r ê_r; latents are the concatenation [base | residual 1 | residual 2 | …].

    Exposes `reconstruct_raw` like a SparseAutoencoder, so saeflow.evaluate.evaluate_sae evaluates it as is.
    """

    def __init__(self, base: SparseAutoencoder, residuals: Sequence[SparseAutoencoder] = ()):
        super().__init__()
        self.base = base
        self.residuals = nn.ModuleList(residuals)
        for r in self.residuals:
            if r.cfg.d_in != base.cfg.d_in:
                raise ConfigError(f"residual d_in ({r.cfg.d_in}) differs from the base's ({base.cfg.d_in})")

    @property
    def d_sae(self) -> int:
        return self.base.cfg.d_sae + sum(r.cfg.d_sae for r in self.residuals)

    @torch.no_grad()
    def reconstruct_raw(self, x: Tensor) -> ForwardOutput:
        f, recon = self.base.reconstruct_raw(x)
        latents = [f]
        for r in self.residuals:
            fr, er = r.reconstruct_raw(x)
            latents.append(fr)
            recon = recon + er
        return ForwardOutput(torch.cat(latents, dim=-1), recon)

    def forward(self, x: Tensor) -> ForwardOutput:
        return self.reconstruct_raw(x)


def load_boosted(
    residual_dirs: Sequence[str | Path], base_dir: str | Path | None = None, device: str = "cpu"
) -> BoostedSAE:
    """Base (from `base_dir`, default the residuals' own `extra.base`) plus the saved residual SAEs,
    summed."""
    residuals = [load_sae(d, device=device) for d in residual_dirs]
    for d, r in zip(residual_dirs, residuals, strict=True):
        if not isinstance(r, ResidualMixin):
            raise DataError(f"{d} is a {r.cfg.architecture} SAE, not a residual SAE")
    if base_dir is None:
        if not residuals:
            raise DataError("load_boosted: give base_dir or at least one residual SAE")
        bases = {str(Path(r.cfg.extra["base"])) for r in residuals}
        if len(bases) > 1:
            raise DataError(
                f"the residual SAEs were trained on different bases ({', '.join(sorted(bases))}); "
                "give base_dir explicitly"
            )
        base = residuals[0].base
    else:
        base = load_sae(base_dir)
    return BoostedSAE(base.to(device), residuals).to(device)


def load_for_evaluation(
    sae_dir: str | Path, residual_dirs: Sequence[str | Path] = (), device: str = "cpu"
) -> SparseAutoencoder | BoostedSAE:
    """What a spliced evaluation of `sae_dir` runs: the SAE itself; a residual SAE boosted on its own base
    (x̂_base + ê: a residual alone reconstructs the base's error, not x); with `residual_dirs`, the SAE at
    `sae_dir` as the base plus those residual SAEs (the stacked boosted SAE)."""
    if residual_dirs:
        return load_boosted(residual_dirs, base_dir=sae_dir, device=device)
    sae = load_sae(sae_dir, device=device)
    if isinstance(sae, ResidualMixin):
        return BoostedSAE(sae.base.to(device), [sae]).to(device)
    return sae
