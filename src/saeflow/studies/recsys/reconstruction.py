"""SASRec activation sets (through ActivationWriter) and RecSAE's reconstruction quality: FVU, L0, dead share
over all positions, and the share of NDCG@10 / HR@10 kept when items are ranked from the reconstructed last
state (error term dropped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from saeflow.activations import ActivationWriter, Manifest
from saeflow.metrics import ReconstructionAccumulator
from saeflow.studies.recsys.metrics import full_ranks, ranking_metrics


def write_sasrec_activations(
    model,
    sequences: Sequence[Sequence[int]],
    doc_ids: Sequence[str],
    out_dir: str | Path,
    *,
    batch_size: int = 256,
    dtype: torch.dtype | str = torch.float32,
) -> Manifest:
    """The scoring state at every position of each sequence (its last max_len items), one document per
    sequence, written with ActivationWriter; token ids are the item indices."""
    layer = model.scoring_layer
    writer = ActivationWriter(out_dir, model=model.name, layer=layer, d_model=model.d_model, dtype=dtype)
    for s in range(0, len(sequences), batch_size):
        ids = [str(d) for d in doc_ids[s : s + batch_size]]
        batch = model.batch(model.encode(sequences[s : s + batch_size]))
        h = model.hidden(batch, layer)
        mask = model.stored_mask(batch)
        counts = mask.sum(1).tolist()
        pos = torch.arange(mask.shape[1]).expand_as(mask)[mask]
        writer.add(ids, h[mask], batch.input_ids[mask], counts, pos)
    return writer.finish(
        max_tokens=writer.n_tokens,
        max_length=model.net.cfg.max_len,
        batch_size=batch_size,
        extra={"site": "sasrec scoring state (final layer norm)"},
    )


class RecReconstruction(NamedTuple):
    n_tokens: int
    fvu: float
    l0: float
    dead_fraction: float
    ndcg10: float
    """Full-ranking NDCG@10 from the model's own states."""
    hr10: float
    ndcg10_recon: float
    """From the SAE reconstruction of the last state (error dropped)."""
    hr10_recon: float
    ndcg10_kept: float
    """ndcg10_recon / ndcg10."""
    hr10_kept: float


@torch.no_grad()
def reconstruction_quality(
    sae, rows: Iterable[torch.Tensor], model, histories: Sequence[Sequence[int]], targets: Sequence[int]
) -> RecReconstruction:
    """`rows`: blocks of [n, d] states at all positions (e.g. ActivationStore.iter_rows acts) for FVU/L0/dead;
    `histories`/`targets`: the ranking evaluation (e.g. test histories and targets)."""
    acc = ReconstructionAccumulator()
    for x in rows:
        out = sae.reconstruct_raw(x.float())
        acc.update(x.float(), out.recon, out.latents)
    rec = acc.result()
    states = model.last_states(histories)
    clean = ranking_metrics(full_ranks(model.scores(states), histories, targets), (10,))
    recon = ranking_metrics(
        full_ranks(model.scores(sae.reconstruct_raw(states).recon), histories, targets), (10,)
    )
    return RecReconstruction(
        rec.n_tokens,
        rec.fvu,
        rec.l0,
        rec.dead_fraction,
        clean.ndcg[10],
        clean.hr[10],
        recon.ndcg[10],
        recon.hr[10],
        recon.ndcg[10] / clean.ndcg[10] if clean.ndcg[10] > 0 else float("nan"),
        recon.hr[10] / clean.hr[10] if clean.hr[10] > 0 else float("nan"),
    )
