"""Per-residue activation sets of a protein LM, written through saeflow.activations.ActivationWriter."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from saeflow.activations import ActivationWriter, Manifest
from saeflow.errors import DataError
from saeflow.models.base import SubjectModel
from saeflow.studies.protein.data import ProteinRecord

log = logging.getLogger(__name__)


def select_records(
    model: SubjectModel, records: Iterable[ProteinRecord | str], max_tokens: int
) -> list[ProteinRecord]:
    """Records in order until `max_tokens` residues, each cut to the residues `model` stores (its max length)
    and the last one cut to fit: exactly the rows extraction stores, so labels built from them align row by
    row."""
    out, total = [], 0
    for i, rec in enumerate(records):
        if total >= max_tokens:
            break
        if isinstance(rec, str):
            rec = ProteinRecord(f"seq{i}", rec)
        keep = min(stored_counts(model, [rec])[0], max_tokens - total)
        if keep < len(rec.sequence):
            rec = ProteinRecord(
                rec.id, rec.sequence[:keep], None if rec.labels is None else rec.labels[:keep]
            )
        if rec.sequence:
            out.append(rec)
            total += len(rec.sequence)
    return out


@torch.inference_mode()
def extract_residue_activations(
    model: SubjectModel,
    records: Iterable[ProteinRecord | str],
    layer: int,
    out_dir: str | Path,
    *,
    max_tokens: int,
    batch_size: int = 16,
    shard_rows: int = 32768,
    dtype: torch.dtype | str = torch.float16,
    chunk_batches: int = 8,
) -> Manifest:
    """Store layer `layer`'s state at every residue of `records` (in order, until `max_tokens` residues).

    Only `model.stored_mask` positions are stored (no <cls>/<eos>/start/stop/padding); each row's `position`
    is its residue index in the sequence (0-based), `token_ids` the model's token id, `doc_index` the record.
    Records longer than the model's max length are stored up to it (`select_records` gives the stored
    records, to build aligned labels). Returns the Manifest (written last).
    """
    for key, value in (("max_tokens", max_tokens), ("batch_size", batch_size), ("shard_rows", shard_rows)):
        if int(value) < 1:
            raise DataError(f"{key} must be at least 1; got {value}")
    layer = model.check_layer(layer)
    chosen = select_records(model, records, max_tokens)
    writer = ActivationWriter(
        out_dir, model=model.name, layer=layer, d_model=model.d_model, shard_rows=shard_rows, dtype=dtype
    )
    chunk = batch_size * chunk_batches
    for start in range(0, len(chosen), chunk):
        part = chosen[start : start + chunk]
        tokens = model.encode(part)
        rows: list[torch.Tensor | None] = [None] * len(part)
        ids: list[torch.Tensor | None] = [None] * len(part)
        order = sorted(range(len(part)), key=lambda i: (-len(tokens[i]), i))
        for b in range(0, len(order), batch_size):
            group = order[b : b + batch_size]
            batch = model.batch([tokens[i] for i in group])
            hidden = model.hidden(batch, layer)
            keep = model.stored_mask(batch)
            for row, i in enumerate(group):
                rows[i] = hidden[row][keep[row]].float().cpu()
                ids[i] = batch.input_ids[row][keep[row]].cpu()
        counts = [len(r) for r in rows]
        for rec, n in zip(part, counts, strict=True):
            if n != len(rec.sequence):
                raise DataError(
                    f"{model.name}: stored {n} positions for {rec.id!r} of {len(rec.sequence)} residues"
                )
        writer.add(
            [r.id for r in part],
            torch.cat(rows),
            token_ids=torch.cat(ids),
            counts=counts,
            positions=torch.cat([torch.arange(n, dtype=torch.int32) for n in counts]),
        )
    manifest = writer.finish(
        max_tokens=max_tokens,
        max_length=getattr(model, "max_length", 0),
        batch_size=batch_size,
        extra={"kind": model.kind, "position": "residue index (0-based)"},
    )
    log.info(
        "stored %d residues of %d chains at %.0f residues/s -> %s",
        manifest.n_tokens,
        len(manifest.docs),
        manifest.tokens_per_s,
        out_dir,
    )
    return manifest


def stored_counts(model: SubjectModel, records: Sequence[ProteinRecord | str]) -> list[int]:
    """Residues each record stores under `model` (its sequence, cut at the model's max length)."""
    return [int(model.stored_mask(model.batch([t])).sum()) for t in model.encode(records)]


class StoredLatents(NamedTuple):
    """SAE latents (or raw neurons) of every row of an activation set, in storage order."""

    acts: torch.Tensor
    """[N, m] float32 latents (the raw activations when no SAE is given)."""
    doc_index: torch.Tensor
    """[N] record index (into the manifest's docs)."""
    position: torch.Tensor
    """[N] residue index in the record."""


@torch.inference_mode()
def stored_latents(
    manifest_path: str | Path, sae: Any | None = None, *, batch_rows: int = 8192
) -> StoredLatents:
    """Encode a per-residue activation set with `sae` (anything with `reconstruct_raw`), or return its raw
    activations (the neuron baseline). Holds [N, m] in memory: use on validation / test chains."""
    from saeflow.activations import ActivationStore

    store = ActivationStore(manifest_path)
    acts, docs, pos = [], [], []
    for rows in store.iter_rows(batch_rows):
        acts.append(rows.acts if sae is None else sae.reconstruct_raw(rows.acts).latents.float())
        docs.append(rows.doc_index.long())
        pos.append(rows.position.long())
    return StoredLatents(torch.cat(acts), torch.cat(docs), torch.cat(pos))
