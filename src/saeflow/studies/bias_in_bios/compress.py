"""Compressed SAEs (SSAE paper Table 1, "Comp." rows): an SAE sliced to a fraction of its latents.

The kept latents are the most frequently active ones (share of stored tokens of the ambiguous training set on
which the latent is > 0; ties go to the lower index), in their original order. The slice keeps their encoder
columns W_enc[:, S] and biases b_enc[S], their decoder rows W_dec[S] and per-latent extras (a BatchTopK or
JumpReLU threshold), and the whole b_dec; a TopK-family SAE keeps its k, but never more than the kept latents.
Per-latent activations (ReLU, JumpReLU, BatchTopK at inference) are therefore those of the full SAE on the
kept latents; a TopK SAE picks its k among the kept latents only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from saeflow.errors import ConfigError, DataError
from saeflow.sae import SparseAutoencoder, make_sae

SLICEABLE = ("relu", "topk", "batchtopk", "jumprelu", "ortsae")
"""Architectures whose latents are independent columns (no per-latent structure such as Matryoshka prefixes
or a residual's base)."""


@dataclass(frozen=True)
class CompressConfig:
    """Compressed rows (mirrors ``bias_in_bios.compress`` in the config)."""

    fraction: float = 0.125
    """Share of the latents kept."""
    saes: tuple[str, ...] = ("GSAE", "SSAE")
    """Labels (of bias_in_bios.saes) of the SAEs compressed; labels the study does not compare are skipped
    (specs.compressed_study_saes names the rows)."""

    def __post_init__(self):
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"bias_in_bios.compress.fraction must be in (0, 1]; got {self.fraction}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> CompressConfig | None:
        """None when the section is null (no compressed rows)."""
        if d is None:
            return None
        kw = dict(d)
        if "saes" in kw:
            kw["saes"] = tuple(str(s) for s in kw["saes"])
        return cls(**{k: v for k, v in kw.items() if k in {f.name for f in dataclasses.fields(cls)}})

    def n_kept(self, d_sae: int) -> int:
        return max(1, round(self.fraction * d_sae))


class FiringCounter:
    """Wraps an encoder ([n, d] → [n, m]) and counts, per latent, the rows on which it is > 0, so one pass
    over an activation set can both pool the latents (debias.pool_by_doc) and measure their frequencies."""

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor]):
        self.encode = encode
        self.counts: torch.Tensor | None = None
        self.rows = 0

    def __call__(self, acts: torch.Tensor) -> torch.Tensor:
        f = self.encode(acts)
        fired = (f > 0).sum(0).double().cpu()
        self.counts = fired if self.counts is None else self.counts + fired
        self.rows += len(f)
        return f

    @property
    def frequency(self) -> torch.Tensor:
        """[m] float64: share of the rows seen on which each latent fired."""
        if self.counts is None:
            raise DataError("no activation rows were encoded, so latent frequencies are undefined")
        return self.counts / self.rows


def kept_latents(frequency: np.ndarray | torch.Tensor, n_keep: int) -> np.ndarray:
    """Indices of the n_keep most frequent latents (ties: lower index first), in increasing order."""
    freq = np.asarray(frequency, dtype=np.float64)
    order = np.lexsort((np.arange(len(freq)), -freq))
    return np.sort(order[:n_keep])


class SlicedSAE(NamedTuple):
    sae: SparseAutoencoder
    kept: np.ndarray
    """Indices (in the full SAE) of its latents, in order."""


def slice_sae(sae: SparseAutoencoder, kept: Sequence[int]) -> SlicedSAE:
    """The SAE restricted to latents `kept` (see the module docstring); weights act on raw activations."""
    arch = sae.cfg.architecture
    if arch not in SLICEABLE:
        raise ConfigError(
            f"bias_in_bios.compress: cannot slice a {arch} SAE; sliceable: {', '.join(SLICEABLE)}"
        )
    kept = np.asarray(kept, dtype=int)
    m = sae.cfg.d_sae
    idx = torch.as_tensor(kept, dtype=torch.long)
    sliced = {}
    for key, v in sae.weights_for_saving().items():
        v = v.detach().cpu()
        if key == "W_enc":
            sliced[key] = v[:, idx]
        elif key == "b_dec" or v.numel() == 1 or v.shape[0] != m:
            sliced[key] = v
        else:
            sliced[key] = v[idx]
    cfg = dataclasses.replace(sae.cfg, d_sae=len(kept), k=min(sae.cfg.k, len(kept)))
    small = make_sae(cfg)
    small.load_saved_weights({k: v.contiguous() for k, v in sliced.items()}, input_scale=1.0)
    return SlicedSAE(small.to(sae.W_enc.device), kept)


class Compression(NamedTuple):
    sliced: SlicedSAE
    frequency: np.ndarray
    """[m] the full SAE's per-latent firing frequency the kept latents were chosen by."""

    def record(self) -> dict[str, Any]:
        """JSON-ready summary: the kept latents and how much of the firing they carry."""
        kept = self.sliced.kept
        total = float(self.frequency.sum())
        return {
            "d_sae": len(self.frequency),
            "n_kept": len(kept),
            "k": self.sliced.sae.cfg.k,
            "kept": [int(i) for i in kept],
            "kept_min_frequency": float(self.frequency[kept].min()),
            "kept_share_of_firings": float(self.frequency[kept].sum()) / total if total > 0 else None,
        }


def compress(sae: SparseAutoencoder, frequency: np.ndarray, cfg: CompressConfig) -> Compression:
    """Slice `sae` to its cfg.fraction most frequently active latents (frequency: [m], e.g. a FiringCounter's
    on the ambiguous set)."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if len(frequency) != sae.cfg.d_sae:
        raise DataError(f"{len(frequency)} latent frequencies for an SAE of {sae.cfg.d_sae} latents")
    return Compression(slice_sae(sae, kept_latents(frequency, cfg.n_kept(sae.cfg.d_sae))), frequency)
