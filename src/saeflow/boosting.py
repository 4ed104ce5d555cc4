"""Boosted SAEs: domain adaptation without retraining (METHODS.md § Boosted / residual SAE).

A frozen base SAE reconstructs x as x̂_base; residual SAEs (saeflow.sae.residual, one per domain, each trained
on its domain's activations to reconstruct e = x − x̂_base with no decoder bias) add their outputs:
x̂ = x̂_base + Σ_r ê_r. :class:`BoostedSAE` is that sum, usable wherever an SAE is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
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


def load_boosted(residual_dirs: Sequence[str | Path], base_dir: str | Path | None = None,
                 device: str = "cpu") -> BoostedSAE:
    """Base (from `base_dir`, default the residuals' own `extra.base`) plus the saved residual SAEs, summed."""
    residuals = [load_sae(d, device=device) for d in residual_dirs]
    for d, r in zip(residual_dirs, residuals, strict=True):
        if not isinstance(r, ResidualMixin):
            raise DataError(f"{d} is a {r.cfg.architecture} SAE, not a residual SAE")
    if base_dir is None:
        if not residuals:
            raise DataError("load_boosted: give base_dir or at least one residual SAE")
        bases = {str(Path(r.cfg.extra["base"])) for r in residuals}
        if len(bases) > 1:
            raise DataError(f"the residual SAEs were trained on different bases ({', '.join(sorted(bases))}); "
                            "give base_dir explicitly")
        base = residuals[0].base
    else:
        base = load_sae(base_dir)
    return BoostedSAE(base.to(device), residuals).to(device)


def load_for_evaluation(sae_dir: str | Path, residual_dirs: Sequence[str | Path] = (),
                        device: str = "cpu") -> SparseAutoencoder | BoostedSAE:
    """What a spliced evaluation of `sae_dir` runs: the SAE itself; a residual SAE boosted on its own base
    (x̂_base + ê: a residual alone reconstructs the base's error, not x); with `residual_dirs`, the SAE at
    `sae_dir` as the base plus those residual SAEs (the stacked boosted SAE)."""
    if residual_dirs:
        return load_boosted(residual_dirs, base_dir=sae_dir, device=device)
    sae = load_sae(sae_dir, device=device)
    if isinstance(sae, ResidualMixin):
        return BoostedSAE(sae.base.to(device), [sae]).to(device)
    return sae


# --------------------------------------------------------------------------------------------- the table

BOOSTING_COLUMNS = ["subdomain", "method", "sae", "domain_explained_variance", "domain_delta_ce",
                    "domain_ev_gain_pct", "general_explained_variance", "general_delta_ce",
                    "general_retention_pct", "domain_l0", "general_l0"]
STACKED_LABEL = "base + all residuals"


def boosting_table(evals: Mapping[str, Mapping[str, Mapping[str, Any]]], *, base: str,
                   residuals: Mapping[str, str], finetunes: Mapping[str, str], stacked: str | None,
                   general: str) -> pd.DataFrame:
    """Base vs base + residual vs full finetune per subdomain, and the stacked base + every residual.

    `evals[name][eval_set]` is an evaluation row (saeflow.evaluate.EvalResult.row); `residuals` / `finetunes` map
    subdomain -> name. domain_ev_gain_pct = 100·(EV_domain − EV_domain(base)) / EV_domain(base);
    general_retention_pct = 100·EV_general / EV_general(base). The stacked row (subdomain "all") averages the
    domain columns over the subdomains.
    """
    subs = list(residuals)
    base_general = evals[base][general]

    def row(sub: str, method: str, name: str, domain_evs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        base_dom = [evals[base][s] for s in (subs if sub == "all" else [sub])]
        dom_ev = _mean(e["explained_variance"] for e in domain_evs)
        base_ev = _mean(e["explained_variance"] for e in base_dom)
        gen = evals[name][general]
        return {"subdomain": sub, "method": method, "sae": name,
                "domain_explained_variance": dom_ev, "domain_delta_ce": _mean(e["delta_ce"] for e in domain_evs),
                "domain_ev_gain_pct": 100 * (dom_ev - base_ev) / abs(base_ev) if base_ev else float("nan"),
                "general_explained_variance": gen["explained_variance"], "general_delta_ce": gen["delta_ce"],
                "general_retention_pct": (100 * gen["explained_variance"] / base_general["explained_variance"]
                                          if base_general["explained_variance"] else float("nan")),
                "domain_l0": _mean(e["l0"] for e in domain_evs), "general_l0": gen["l0"]}

    rows = []
    for sub in subs:
        rows.append(row(sub, "base", base, [evals[base][sub]]))
        rows.append(row(sub, "base + residual", residuals[sub], [evals[residuals[sub]][sub]]))
        if sub in finetunes:
            rows.append(row(sub, "full finetune", finetunes[sub], [evals[finetunes[sub]][sub]]))
    if stacked is not None:
        rows.append(row("all", STACKED_LABEL, stacked, [evals[stacked][s] for s in subs]))
    return pd.DataFrame(rows, columns=BOOSTING_COLUMNS)


def _mean(values: Iterable[float]) -> float:
    v = [float(x) for x in values]
    return sum(v) / len(v) if v else float("nan")
