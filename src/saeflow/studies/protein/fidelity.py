"""Fidelity of an SAE spliced into a protein LM: CE clean, with the SAE, zero- and mean-ablated; % CE
recovered.

CE is the model's own `token_losses` (next-residue CE for UniRep, seeded 15% masked-LM CE for ESM), summed
over the same scored positions in every run. % recovered = (CE_abl − CE_sae) / (CE_abl − CE_clean) (METHODS §
Protein-LM SAEs). For UniRep the splice feeds the recurrence, so the reconstruction's errors compound along
the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from saeflow.models.base import SubjectModel, iter_batches
from saeflow.studies.protein.data import ProteinRecord


class ProteinFidelity(NamedTuple):
    ce_clean: float
    ce_sae: float
    ce_zero: float
    ce_mean: float
    recovered_zero: float
    """% CE recovered against zero-ablation (1 = as good as clean)."""
    recovered_mean: float
    """% CE recovered against mean-ablation."""
    n_scored: int


def _recovered(ablated: float, sae: float, clean: float) -> float:
    gap = ablated - clean
    return float("nan") if abs(gap) < 1e-12 else (ablated - sae) / gap


@torch.inference_mode()
def protein_fidelity(
    model: SubjectModel,
    records: Iterable[ProteinRecord | str],
    layer: int,
    sae: Any,
    mean: Tensor,
    *,
    batch_size: int = 16,
) -> ProteinFidelity:
    """Mean CE per scored position of `records` clean, with `sae` (anything with `reconstruct_raw`) spliced at
    `layer`, and with the layer's residue states replaced by zeros / by `mean` [d]."""
    mean = mean.float().to(model.device)
    fns: dict[str, Callable[[Tensor], Tensor] | None] = {
        "clean": None,
        "sae": lambda h: sae.reconstruct_raw(h).recon.to(h.dtype),
        "zero": torch.zeros_like,
        "mean": lambda h: mean.to(h.dtype).expand_as(h),
    }
    sums = dict.fromkeys(fns, 0.0)
    n = 0
    tokens = model.encode(list(records))
    for batch in iter_batches(model, tokens, batch_size):
        for name, fn in fns.items():
            if fn is None:
                out = model.token_losses(batch)
                n += int(out.scored.sum())
            else:
                with model.splice(layer, fn):
                    out = model.token_losses(batch)
            sums[name] += float(out.loss[out.scored].double().sum())
    ce = {k: v / max(n, 1) for k, v in sums.items()}
    return ProteinFidelity(
        ce["clean"],
        ce["sae"],
        ce["zero"],
        ce["mean"],
        _recovered(ce["zero"], ce["sae"], ce["clean"]),
        _recovered(ce["mean"], ce["sae"], ce["clean"]),
        n,
    )
