"""Top activations of every SAE latent, streamed over an activation set (never the whole set in RAM).

Three passes over the stored rows, each encoding one block at a time:

1. running top-N per latent (``torch.topk`` over the running top-N and the block, concatenated), activation
   frequency, and which rows of a seeded random pool leave each latent at zero (random non-activating
   contexts);
2. per-latent histogram over (0, max], and a seeded uniform sample of K contexts in each of ``n_quantiles``
   equal-width intervals of (0, max] (top-N rows excluded, so these are held out from the explanation);
3. the latent's activation at every token of each context window (only the rows those windows touch are
encoded).

Random draws use a hash of (seed, row, latent), so the result does not depend on the block size.
Saved as ``latents.safetensors`` (tensors) + ``latents.json`` (config, counts): no pickle.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError, DataError
from saeflow.io import atomic_path, write_json

TENSORS = "latents.safetensors"
META = "latents.json"
FORMAT = "saeflow.latents/1"
KINDS = ("top", "quantile", "random")


@dataclass(frozen=True)
class LatentsConfig:
    """What to collect per latent."""

    n_top: int = 20
    """Top-activating contexts kept per latent."""
    n_quantiles: int = 5
    """Equal-width intervals of (0, max activation] to sample contexts from."""
    per_quantile: int = 4
    """Contexts sampled per interval (uniformly, seeded)."""
    n_random: int = 20
    """Random contexts where the latent is zero."""
    random_pool: int = 2048
    """Rows drawn once (seeded) as candidates for the random non-activating contexts."""
    window_left: int = 12
    """Tokens kept before the context's centre token."""
    window_right: int = 4
    """Tokens kept after it."""
    n_bins: int = 32
    """Histogram bins over (0, max activation]."""
    batch_size: int = 2048
    """Rows encoded at a time."""
    seed: int = 0

    def __post_init__(self):
        for name in (
            "n_top",
            "n_quantiles",
            "per_quantile",
            "n_random",
            "random_pool",
            "n_bins",
            "batch_size",
        ):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"latents.{name} must be at least 1; got {getattr(self, name)}")
        if self.window_left < 0 or self.window_right < 0:
            raise ConfigError("latents.window_left and latents.window_right must be >= 0")

    @property
    def width(self) -> int:
        return self.window_left + 1 + self.window_right

    @classmethod
    def from_dict(cls, d: dict) -> LatentsConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown latents key(s): {', '.join(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class Contexts:
    """k contexts per latent; leading shape [d_sae, k]. Empty slots have row -1."""

    rows: Tensor
    """[m, k] int64 row of the centre token in the activation set (storage order)."""
    values: Tensor
    """[m, k] float32 the latent's activation at the centre."""
    doc_index: Tensor
    """[m, k] int64 index into the manifest's `docs` (-1 when empty)."""
    position: Tensor
    """[m, k] int64 token position of the centre in its document (-1 when empty)."""
    token_ids: Tensor
    """[m, k, W] int64 token ids of the window (-1 outside the document)."""
    acts: Tensor
    """[m, k, W] float32 the latent's activation at each window token."""

    def valid(self) -> Tensor:
        return self.rows >= 0


@dataclass(frozen=True)
class LatentActivations:
    """Everything collected per latent by `top_activations`."""

    config: LatentsConfig
    n_rows: int
    d_sae: int
    frequency: Tensor
    """[m] share of rows where the latent is > 0."""
    max_value: Tensor
    """[m] largest activation (0 for a dead latent)."""
    mean_active: Tensor
    """[m] mean activation over the rows where it is > 0."""
    histogram: Tensor
    """[m, n_bins] counts of non-zero activations in equal bins of (0, max_value]."""
    top: Contexts
    quantile: Contexts
    quantile_bin: Tensor
    """[m, n_quantiles * per_quantile] interval of each quantile context (0 = lowest; -1 when empty)."""
    random: Contexts
    seconds: float = 0.0
    source: str = ""
    """Manifest the contexts index into."""

    def save(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        tensors = {
            k: getattr(self, k).contiguous()
            for k in ("frequency", "max_value", "mean_active", "histogram", "quantile_bin")
        }
        for kind in KINDS:
            ctx = getattr(self, kind)
            for f in dataclasses.fields(Contexts):
                tensors[f"{kind}.{f.name}"] = getattr(ctx, f.name).contiguous()
        with atomic_path(out_dir / TENSORS) as tmp:
            save_file(tensors, str(tmp))
        write_json(
            out_dir / META,
            {
                "format": FORMAT,
                "config": dataclasses.asdict(self.config),
                "n_rows": self.n_rows,
                "d_sae": self.d_sae,
                "seconds": self.seconds,
                "source": self.source,
            },
        )

    @classmethod
    def load(cls, out_dir: str | Path) -> LatentActivations:
        out_dir = Path(out_dir)
        if not (out_dir / META).is_file() or not (out_dir / TENSORS).is_file():
            raise DataError(f"{out_dir}: expected {META} and {TENSORS} (saved top activations)")
        meta = json.loads((out_dir / META).read_text())
        if meta.get("format") != FORMAT:
            raise DataError(f"{out_dir / META} has format {meta.get('format')!r}; expected {FORMAT}")
        t = load_file(str(out_dir / TENSORS))
        ctx = {
            k: Contexts(**{f.name: t[f"{k}.{f.name}"] for f in dataclasses.fields(Contexts)}) for k in KINDS
        }
        return cls(
            config=LatentsConfig(**meta["config"]),
            n_rows=meta["n_rows"],
            d_sae=meta["d_sae"],
            frequency=t["frequency"],
            max_value=t["max_value"],
            mean_active=t["mean_active"],
            histogram=t["histogram"],
            quantile_bin=t["quantile_bin"],
            seconds=meta["seconds"],
            source=meta["source"],
            **ctx,
        )


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

_MASK62 = (1 << 62) - 1


def _mix(x: Tensor) -> Tensor:
    """A 62-bit integer hash (xorshift-multiply rounds on int64; products wrap, shifts are kept logical)."""
    x = x & _MASK62
    for mult in (0x3F58476D1CE4E5B9, 0x14D049BB133111EB):
        x = (x ^ (x >> 31)) * mult & _MASK62
    return x ^ (x >> 29)


def uniform_keys(rows: Tensor, latents: Tensor | int, seed: int) -> Tensor:
    """Deterministic U[0, 1) float64 per (row, latent): the same value whatever the block size."""
    lat = torch.as_tensor(latents, dtype=torch.int64)
    x = _mix(
        rows.to(torch.int64) * 0x2545F4914F6CDD1 + _mix(lat + 0x9E3779B9) + int(seed) * 0x632BE59BD9B4E01
    )
    return (x >> 9).to(torch.float64) / float(1 << 53)


@torch.no_grad()
def encode_rows(sae, x: Tensor) -> Tensor:
    """Latent activations [n, m] of raw activation rows (the SAE's input scale applied)."""
    w = sae.W_enc
    return sae.encode(x.to(w.dtype) * float(getattr(sae, "input_scale", 1.0)))


def _grouped_first(group: Tensor, key: Tensor, k: int) -> Tensor:
    """Indices of the k smallest `key` per `group` value; returns (order, rank) for the kept entries."""
    order = torch.argsort(group.to(torch.float64) + key, stable=True)
    g = group[order]
    rank = torch.arange(len(g)) - torch.searchsorted(g, g, right=False)
    keep = rank < k
    return order[keep], rank[keep]


# --------------------------------------------------------------------------------------------------
# the three passes
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def top_activations(
    sae, store: ActivationStore, cfg: LatentsConfig | None = None, *, row_mask: Tensor | None = None
) -> LatentActivations:
    """Collect top-N, quantile and random contexts, frequency and histogram of every latent of `sae`.

    row_mask: [n_rows] bool; rows where it is False (e.g. filtered section headers) count as inactive and are
    never a context centre (they still appear inside windows). Frequencies are over the kept rows."""
    cfg = cfg or LatentsConfig()
    start = time.perf_counter()
    n, m, N = store.n_tokens, int(sae.W_dec.shape[0]), cfg.n_top
    if store.d_model != sae.W_dec.shape[1]:
        raise DataError(
            f"the SAE reads d={sae.W_dec.shape[1]} activations; {store.path} holds d={store.d_model}"
        )

    # pass 1: top-N, frequency, random pool
    top_v = torch.zeros(N, m)
    top_r = torch.full((N, m), -1, dtype=torch.int64)
    fired = torch.zeros(m, dtype=torch.int64)
    total = torch.zeros(m, dtype=torch.float64)
    P = min(cfg.random_pool, n)
    keep_all = torch.ones(n, dtype=torch.bool) if row_mask is None else row_mask.bool()
    if len(keep_all) != n:
        raise DataError(f"row_mask has {len(keep_all)} entries; the activation set has {n} rows")
    pool_keys = torch.where(keep_all, uniform_keys(torch.arange(n), -1, cfg.seed), 2.0)
    P = min(P, int(keep_all.sum()))
    pool = torch.topk(pool_keys, P, largest=False).indices  # in key order
    pool_slot = torch.full((n,), -1, dtype=torch.int64)
    pool_slot[pool] = torch.arange(P)
    pool_active = torch.zeros(P, m, dtype=torch.bool)
    token_ids = torch.empty(n, dtype=torch.int64)
    doc_index = torch.empty(n, dtype=torch.int64)
    position = torch.empty(n, dtype=torch.int64)
    offset = 0
    for block in store.iter_rows(cfg.batch_size):
        b = len(block.acts)
        rows = torch.arange(offset, offset + b)
        token_ids[rows], doc_index[rows], position[rows] = (
            block.token_ids.long(),
            block.doc_index.long(),
            block.position.long(),
        )
        f = encode_rows(sae, block.acts).float() * keep_all[rows, None]
        fired += (f > 0).sum(0)
        total += f.sum(0, dtype=torch.float64)
        cand_v = torch.cat([top_v, f])
        cand_r = torch.cat([top_r, rows[:, None].expand(b, m)])
        top_v, idx = torch.topk(cand_v, N, dim=0)
        top_r = torch.gather(cand_r, 0, idx)
        slots = pool_slot[rows]
        hit = slots >= 0
        if hit.any():
            pool_active[slots[hit]] = f[hit] > 0
        offset += b
    top_r[top_v <= 0] = -1
    top_v[top_v <= 0] = 0
    top_v, top_r = top_v.T.contiguous(), top_r.T.contiguous()
    max_value = top_v[:, 0].clone()
    # random non-activating: the first n_random pool rows (in key order) where the latent is zero
    R = min(cfg.n_random, P)
    order = torch.sort(pool_active.to(torch.int8), dim=0, stable=True).indices[:R]  # [R, m]
    ok = ~torch.gather(pool_active, 0, order)
    rand_r = torch.where(ok, pool[order], -1).T.contiguous()
    rand_r = torch.cat([rand_r, torch.full((m, cfg.n_random - R), -1, dtype=torch.int64)], 1)

    # pass 2: histogram and quantile samples
    Q, K = cfg.n_quantiles, cfg.per_quantile
    hist = torch.zeros(m * cfg.n_bins, dtype=torch.int64)
    top_keys = (torch.arange(m)[:, None] * n + top_r)[top_r >= 0]
    res_key = torch.empty(0, dtype=torch.float64)
    res_group = res_row = torch.empty(0, dtype=torch.int64)
    res_val = torch.empty(0)
    scale = torch.where(max_value > 0, max_value, torch.ones_like(max_value))
    offset = 0
    for block in store.iter_rows(cfg.batch_size):
        b = len(block.acts)
        f = encode_rows(sae, block.acts).float() * keep_all[offset : offset + b, None]
        r, lat = f.nonzero(as_tuple=True)
        if len(r):
            v = f[r, lat]
            rel = (v / scale[lat]).clamp(max=1.0)
            hb = (rel * cfg.n_bins).long().clamp(0, cfg.n_bins - 1)
            hist.index_add_(0, lat * cfg.n_bins + hb, torch.ones_like(hb))
            grow = r + offset
            keep = ~torch.isin(lat * n + grow, top_keys)
            lat, grow, v, rel = lat[keep], grow[keep], v[keep], rel[keep]
            qb = (rel * Q).long().clamp(0, Q - 1)
            key = torch.cat([res_key, uniform_keys(grow, lat, cfg.seed + 1)])
            group = torch.cat([res_group, lat * Q + qb])
            row_all, val_all = torch.cat([res_row, grow]), torch.cat([res_val, v])
            kept, _ = _grouped_first(group, key, K)
            res_key, res_group, res_row, res_val = key[kept], group[kept], row_all[kept], val_all[kept]
        offset += b
    kept, rank = _grouped_first(res_group, res_key, K)
    slot = res_group[kept] * K + rank
    q_r = torch.full((m * Q * K,), -1, dtype=torch.int64)
    q_v = torch.zeros(m * Q * K)
    q_r[slot], q_v[slot] = res_row[kept], res_val[kept]
    q_r, q_v = q_r.view(m, Q * K), q_v.view(m, Q * K)
    q_bin = torch.where(q_r >= 0, torch.arange(Q).repeat_interleave(K)[None, :].expand(m, -1), -1)

    # pass 3: windows
    kinds = {"top": (top_r, top_v), "quantile": (q_r, q_v), "random": (rand_r, torch.zeros(m, cfg.n_random))}
    ctx = _windows(sae, store, cfg, kinds, token_ids, doc_index, position)
    freq = fired.double() / max(int(keep_all.sum()), 1)
    mean_active = (total / fired.clamp_min(1).double()).float()
    return LatentActivations(
        config=cfg,
        n_rows=n,
        d_sae=m,
        frequency=freq.float(),
        max_value=max_value,
        mean_active=mean_active,
        histogram=hist.view(m, cfg.n_bins),
        top=ctx["top"],
        quantile=ctx["quantile"],
        quantile_bin=q_bin,
        random=ctx["random"],
        seconds=round(time.perf_counter() - start, 3),
        source=str(store.path),
    )


def _windows(sae, store, cfg, kinds, token_ids, doc_index, position) -> dict[str, Contexts]:
    n = len(token_ids)
    offsets = torch.arange(-cfg.window_left, cfg.window_right + 1)
    specs, entries = {}, []
    for name, (rows, values) in kinds.items():
        m, k = rows.shape
        centre = rows.clamp_min(0)
        wrow = centre[..., None] + offsets  # [m, k, W]
        inside = (wrow >= 0) & (wrow < n) & (rows[..., None] >= 0)
        wrow_c = wrow.clamp(0, n - 1)
        inside &= doc_index[wrow_c] == doc_index[centre][..., None]
        tok = torch.where(inside, token_ids[wrow_c], -1)
        acts = torch.zeros(m, k, len(offsets))
        specs[name] = (rows, values, tok, acts, inside)
        lat = torch.arange(m)[:, None, None].expand_as(wrow)
        flat = inside.flatten().nonzero().squeeze(1)
        entries.append((name, flat, wrow.flatten()[flat], lat.flatten()[flat]))
    # encode only the rows some window touches, block by block
    all_rows = torch.cat([e[2] for e in entries]) if entries else torch.empty(0, dtype=torch.int64)
    needed = torch.unique(all_rows)
    offset = 0
    for block in store.iter_rows(cfg.batch_size):
        b = len(block.acts)
        lo, hi = torch.searchsorted(needed, torch.tensor([offset, offset + b]))
        if hi > lo:
            local = needed[lo:hi] - offset
            f = encode_rows(sae, block.acts[local]).float()
            for name, flat, wr, lat in entries:
                sel = (wr >= offset) & (wr < offset + b)
                if sel.any():
                    pos_in = torch.searchsorted(needed[lo:hi], wr[sel])
                    specs[name][3].view(-1)[flat[sel]] = f[pos_in, lat[sel]]
        offset += b
    out = {}
    for name, (rows, values, tok, acts, _) in specs.items():
        valid = rows >= 0
        c = rows.clamp_min(0)
        out[name] = Contexts(
            rows=rows,
            values=torch.where(valid, values, 0.0),
            doc_index=torch.where(valid, doc_index[c], -1),
            position=torch.where(valid, position[c], -1),
            token_ids=tok,
            acts=acts,
        )
    return out


@torch.no_grad()
def document_max(
    sae, store: ActivationStore, *, batch_size: int = 2048, mask: Tensor | None = None
) -> Tensor:
    """[n_docs, m] each latent's largest activation over each document's rows (rows where `mask` [n_rows]
    is False are left out), for concept AUROC against document-level labels."""
    m = int(sae.W_dec.shape[0])
    out = torch.zeros(len(store.manifest.docs), m)
    offset = 0
    for block in store.iter_rows(batch_size):
        b = len(block.acts)
        keep = torch.ones(b, dtype=torch.bool) if mask is None else mask[offset : offset + b]
        if keep.any():
            f = encode_rows(sae, block.acts[keep]).float()
            d = block.doc_index[keep].long()
            out.scatter_reduce_(0, d[:, None].expand_as(f), f, "amax", include_self=True)
        offset += b
    return out
