"""Write a tiny activation set (shards + manifest) from tensors, for tests that train or score SAEs."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from saeflow.activations import MANIFEST, Manifest, Shard, shard_name
from saeflow.io import write_json


def write_store(
    out_dir: str | Path,
    acts: torch.Tensor,
    token_ids: torch.Tensor | None = None,
    doc_index: torch.Tensor | None = None,
    shard_rows: int = 256,
    position: torch.Tensor | None = None,
) -> Path:
    """Store `acts` [n, d] (float16) as an activation set; returns the manifest path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n, d = acts.shape
    token_ids = torch.zeros(n, dtype=torch.int32) if token_ids is None else token_ids.to(torch.int32)
    doc_index = torch.arange(n, dtype=torch.int32) if doc_index is None else doc_index.to(torch.int32)
    position = torch.ones(n, dtype=torch.int32) if position is None else position.to(torch.int32)
    shards = []
    for i, s in enumerate(range(0, n, shard_rows)):
        e = min(n, s + shard_rows)
        save_file(
            {
                "acts": acts[s:e].to(torch.float16).contiguous(),
                "token_ids": token_ids[s:e].contiguous(),
                "doc_index": doc_index[s:e].contiguous(),
                "position": position[s:e].contiguous(),
            },
            str(out_dir / shard_name(i)),
        )
        shards.append(Shard(file=shard_name(i), rows=e - s))
    n_docs = int(doc_index.max()) + 1
    manifest = Manifest(
        model="synthetic",
        layer=0,
        d_model=d,
        dtype="float16",
        n_tokens=n,
        shards=tuple(shards),
        docs=tuple(f"d{i}" for i in range(n_docs)),
        max_tokens=n,
        max_length=8,
        batch_size=1,
        mean_norm=float(acts.float().norm(dim=1).mean()),
        elapsed_s=0.0,
        tokens_per_s=0.0,
    )
    write_json(out_dir / MANIFEST, manifest.to_dict())
    return out_dir / MANIFEST


def sparse_data(n: int, d: int, n_features: int, per_token: int, seed: int = 0) -> torch.Tensor:
    """x = Σ of `per_token` random unit features with positive coefficients, plus a little noise and a
    mean."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n_features, d, generator=g)
    feats /= feats.norm(dim=1, keepdim=True)
    idx = torch.stack([torch.randperm(n_features, generator=g)[:per_token] for _ in range(n)])
    coef = torch.rand(n, per_token, generator=g) + 0.5
    x = torch.einsum("nk,nkd->nd", coef, feats[idx])
    return x + 0.01 * torch.randn(n, d, generator=g) + 0.3


class Killed(Exception):
    """Raised by KillAt: a training job killed mid-run."""


class KillAt:
    """A tracker that dies at a given step, like a job killed mid-run (after the checkpoint before it)."""

    def __init__(self, step):
        self.step = step

    def log(self, values, step=None):
        if step == self.step:
            raise Killed

    def summary(self, values):
        pass
