"""Extract residual-stream activations to float16 safetensors shards, and stream them back.

Layout of an activation set (one directory):

    shard_00000.safetensors   acts [n, d] (float16), token_ids / doc_index / position [n] (int32)
    shard_00001.safetensors   ...
    manifest.json             written last: shards with row counts, n_tokens, d_model, dtype, layer, ...

Position 0 of every document (BOS, or the first text token for tokenizers without one) is never
stored: its residual is an outlier that says nothing about the text.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from saeflow import __version__
from saeflow.errors import DataError
from saeflow.io import atomic_path, write_json
from saeflow.models.causal_lm import (
    LoadedLM,
    encode,
    length_sorted_batches,
    pad_batch,
    residual_stream,
    torch_dtype,
)
from saeflow.outliers import inlier_mask, inlier_mean

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "saeflow.activations/1"
_SHARD_KEYS = ("acts", "token_ids", "doc_index", "position")


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.safetensors"


@dataclass(frozen=True)
class Shard:
    file: str
    """File name, relative to the manifest's directory."""
    rows: int


@dataclass(frozen=True)
class Manifest:
    """What manifest.json of an activation set records."""

    model: str
    layer: int
    d_model: int
    dtype: str
    """Storage dtype of `acts` (float16, bfloat16 or float32)."""
    n_tokens: int
    shards: tuple[Shard, ...]
    docs: tuple[str, ...]
    """Ids of the documents that contributed rows; `doc_index` indexes this list."""
    max_tokens: int
    max_length: int
    batch_size: int
    mean_norm: float
    """Mean L2 norm of all stored rows (computed in float32 before the storage cast)."""
    elapsed_s: float
    tokens_per_s: float
    saeflow_version: str = __version__
    format: str = FORMAT
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shards"] = [asdict(s) for s in self.shards]
        d["docs"] = list(self.docs)
        return d

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        path = Path(path)
        if not path.is_file():
            raise DataError(
                f"activation manifest {path} does not exist; run the extract_activations step first"
            )
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"activation manifest {path} is not valid JSON: {err}") from err
        if not isinstance(raw, dict):
            raise DataError(f"activation manifest {path} must hold a JSON object")
        required = [f for f in cls.__dataclass_fields__ if f not in ("saeflow_version", "format", "extra")]
        missing = [k for k in required if k not in raw]
        if missing:
            raise DataError(f"activation manifest {path} lacks key(s) {', '.join(missing)}")
        if raw.get("format", FORMAT) != FORMAT:
            raise DataError(f"activation manifest {path} has format {raw.get('format')!r}; expected {FORMAT}")
        try:
            shards = tuple(Shard(file=str(s["file"]), rows=int(s["rows"])) for s in raw["shards"])
            known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
            known.update(shards=shards, docs=tuple(raw["docs"]))
            manifest = cls(**known)
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"activation manifest {path} is malformed: {err}") from err
        if sum(s.rows for s in manifest.shards) != manifest.n_tokens:
            raise DataError(
                f"activation manifest {path}: shard rows do not add up to n_tokens={manifest.n_tokens}"
            )
        return manifest


# --------------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------------


class _ShardWriter:
    """Buffers rows and writes a shard atomically each time `shard_rows` rows are buffered."""

    def __init__(self, out_dir: Path, shard_rows: int):
        self.out_dir, self.shard_rows = out_dir, shard_rows
        self.parts: dict[str, list[torch.Tensor]] = {k: [] for k in _SHARD_KEYS}
        self.buffered = 0
        self.shards: list[Shard] = []

    def add(self, **tensors: torch.Tensor) -> None:
        for k in _SHARD_KEYS:
            self.parts[k].append(tensors[k])
        self.buffered += len(tensors["acts"])
        while self.buffered >= self.shard_rows:
            self._flush(self.shard_rows)

    def close(self) -> list[Shard]:
        if self.buffered:
            self._flush(self.buffered)
        return self.shards

    def _flush(self, n: int) -> None:
        whole = {k: torch.cat(v) for k, v in self.parts.items()}
        shard = {k: t[:n].contiguous() for k, t in whole.items()}
        rest = {k: t[n:] for k, t in whole.items()}
        self.buffered -= n
        self.parts = {k: [rest[k].clone()] if self.buffered else [] for k in _SHARD_KEYS}
        name = shard_name(len(self.shards))
        with atomic_path(self.out_dir / name) as tmp:
            save_file(shard, str(tmp))
        self.shards.append(Shard(file=name, rows=n))


class ActivationWriter:
    """The one writer of activation sets: documents' rows in, shards and (last) manifest.json out.

    Every producer (LM extraction, the protein and recommender studies, benchmarks, tests) writes through it,
    so every set has the same layout and is read by ActivationStore. The directory's old manifest and shards
    are removed first: a set never looks complete while it is rewritten.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        model: str,
        layer: int,
        d_model: int,
        shard_rows: int = 32768,
        dtype: torch.dtype | str = torch.float16,
    ):
        if int(shard_rows) < 1:
            raise DataError(f"shard_rows must be at least 1; got {shard_rows}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / MANIFEST).unlink(missing_ok=True)
        for stale in self.out_dir.glob("shard_*.safetensors"):
            stale.unlink()
        self.model, self.layer, self.d_model = model, layer, d_model
        self.store_dtype = torch_dtype(dtype)
        self._shards = _ShardWriter(self.out_dir, shard_rows)
        self.doc_ids: list[str] = []
        self.n_tokens = 0
        self._norm_sum = 0.0
        self._start = time.perf_counter()

    def add(
        self,
        doc_ids: Sequence[str],
        acts: torch.Tensor,
        token_ids: torch.Tensor,
        counts: Sequence[int],
        positions: torch.Tensor,
    ) -> None:
        """Rows of consecutive documents: `counts[i]` rows of `acts` [n, d] belong to `doc_ids[i]`;
        `token_ids` and `positions` [n] are each row's token and its position in the document."""
        acts = acts.float()
        if acts.ndim != 2 or acts.shape[1] != self.d_model:
            raise DataError(f"activation rows must be [n, {self.d_model}]; got {tuple(acts.shape)}")
        if sum(counts) != len(acts) or len(counts) != len(doc_ids):
            raise DataError("ActivationWriter.add: counts must give each document's row count")
        self._norm_sum += float(acts.norm(dim=1).sum())
        stored = acts.to(self.store_dtype)
        if not torch.isfinite(stored).all():
            raise DataError(
                f"layer {self.layer} activations overflow {self.store_dtype}; store them as bfloat16 "
                "(config extraction.dtype)"
            )
        first = len(self.doc_ids)
        self._shards.add(
            acts=stored,
            token_ids=torch.as_tensor(token_ids, dtype=torch.int32),
            doc_index=torch.repeat_interleave(
                torch.arange(first, first + len(doc_ids), dtype=torch.int32), torch.as_tensor(list(counts))
            ),
            position=torch.as_tensor(positions, dtype=torch.int32),
        )
        self.doc_ids += [str(d) for d in doc_ids]
        self.n_tokens += int(sum(counts))

    def finish(
        self, *, max_tokens: int, max_length: int, batch_size: int, extra: dict | None = None
    ) -> Manifest:
        """Flush the last shard and write manifest.json (the completion marker)."""
        shards = self._shards.close()
        if self.n_tokens == 0:
            raise DataError(
                f"no tokens to store: the documents are empty or hold no storable position ({self.out_dir})"
            )
        elapsed = time.perf_counter() - self._start
        manifest = Manifest(
            model=self.model,
            layer=self.layer,
            d_model=self.d_model,
            dtype=str(self.store_dtype).removeprefix("torch."),
            n_tokens=self.n_tokens,
            shards=tuple(shards),
            docs=tuple(self.doc_ids),
            max_tokens=max_tokens,
            max_length=max_length,
            batch_size=batch_size,
            mean_norm=self._norm_sum / self.n_tokens,
            elapsed_s=round(elapsed, 3),
            tokens_per_s=round(self.n_tokens / max(elapsed, 1e-9), 1),
            extra=dict(extra or {}),
        )
        write_json(self.out_dir / MANIFEST, manifest.to_dict())
        return manifest


def _select(
    documents: Iterable[dict], tokenizer: Any, max_length: int, max_tokens: int, chunk_docs: int
) -> Iterator[list[tuple[str, list[int]]]]:
    """Yield chunks of (doc id, token ids) in file order until `max_tokens` storable tokens.

    A document stores len(tokens) - 1 rows (position 0 is skipped); the last one is cut to fit.
    """
    remaining = max_tokens
    pending: list[tuple[int, dict]] = []

    def encode_pending() -> list[tuple[str, list[int]]]:
        nonlocal remaining
        token_lists = encode(tokenizer, [d["text"] for _, d in pending], max_length)
        chunk = []
        for (_, doc), toks in zip(pending, token_lists, strict=True):
            if remaining <= 0:
                break
            stored = len(toks) - 1
            if stored <= 0:
                continue
            if stored > remaining:
                toks = toks[: remaining + 1]
            remaining -= len(toks) - 1
            chunk.append((str(doc["id"]), list(toks)))
        pending.clear()
        return chunk

    for i, doc in enumerate(documents):
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str) or "id" not in doc:
            raise DataError(
                f"document #{i} must be an object with 'id' and 'text' (a string); got {str(doc)[:80]!r}"
            )
        pending.append((i, doc))
        if len(pending) >= chunk_docs:
            chunk = encode_pending()
            if chunk:
                yield chunk
            if remaining <= 0:
                return
    if pending and remaining > 0:
        chunk = encode_pending()
        if chunk:
            yield chunk


def extract_activations(
    lm: LoadedLM,
    documents: Iterable[dict],
    layer: int,
    out_dir: str | Path,
    *,
    max_tokens: int,
    batch_size: int,
    max_length: int,
    shard_rows: int,
    dtype: torch.dtype | str = torch.float16,
    chunk_batches: int = 8,
    progress: bool = True,
) -> Manifest:
    """Store the layer-`layer` residual at every non-pad position except 0 of `documents` (file order).

    documents: dicts with "id" and "text", taken in order until `max_tokens` rows are stored.
    Documents are processed `chunk_batches * batch_size` at a time, sorted by length inside a chunk
    (less padding) and written back in file order; a shard is written each `shard_rows` rows, and
    manifest.json last. Returns the Manifest.
    """
    for key, value in (
        ("max_tokens", max_tokens),
        ("batch_size", batch_size),
        ("max_length", max_length),
        ("shard_rows", shard_rows),
    ):
        if int(value) < 1:
            raise DataError(f"{key} must be at least 1; got {value}")
    if max_length < 2:
        raise DataError(f"max_length must be at least 2 (position 0 is never stored); got {max_length}")
    out_dir = Path(out_dir)
    writer = ActivationWriter(
        out_dir, model=lm.name, layer=layer, d_model=lm.d_model, shard_rows=shard_rows, dtype=dtype
    )
    bar = tqdm(total=max_tokens, unit="tok", desc=f"extract L{layer}", disable=not progress, mininterval=2.0)
    pad_id = lm.tokenizer.pad_token_id
    for chunk in _select(documents, lm.tokenizer, max_length, max_tokens, batch_size * chunk_batches):
        per_doc: list[torch.Tensor | None] = [None] * len(chunk)
        for group in length_sorted_batches([len(t) for _, t in chunk], batch_size):
            ids, mask = pad_batch([chunk[i][1] for i in group], pad_id)
            hidden = residual_stream(lm, ids, mask, layer)
            keep = mask.bool().to(hidden.device)
            keep[:, 0] = False
            rows = hidden[keep].float().cpu()
            counts = keep.sum(dim=1).tolist()
            for i, part in zip(group, rows.split(counts), strict=True):
                per_doc[i] = part
        counts = [len(t) - 1 for _, t in chunk]
        writer.add(
            [doc_id for doc_id, _ in chunk],
            torch.cat(per_doc),  # back in file order
            token_ids=torch.tensor([tok for _, t in chunk for tok in t[1:]], dtype=torch.int32),
            counts=counts,
            positions=torch.cat([torch.arange(1, n + 1, dtype=torch.int32) for n in counts]),
        )
        del per_doc
        bar.update(sum(counts))
    bar.close()
    if 0 < writer.n_tokens < max_tokens:
        log.warning("the documents hold only %d storable tokens; asked for %d", writer.n_tokens, max_tokens)
    manifest = writer.finish(max_tokens=max_tokens, max_length=max_length, batch_size=batch_size)
    n_tokens, doc_ids, shards = manifest.n_tokens, manifest.docs, manifest.shards
    log.info(
        "stored %d tokens of %d documents in %d shard(s) at %.0f tokens/s -> %s",
        n_tokens,
        len(doc_ids),
        len(shards),
        manifest.tokens_per_s,
        out_dir,
    )
    return manifest


# --------------------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------------------


class Rows(NamedTuple):
    """A block of stored rows in storage order."""

    acts: torch.Tensor
    token_ids: torch.Tensor
    doc_index: torch.Tensor
    position: torch.Tensor


class ActivationStore:
    """Read an activation set lazily: a few shards in memory at a time."""

    def __init__(self, manifest_path: str | Path, *, buffer_shards: int = 2):
        self.path = Path(manifest_path)
        self.manifest = Manifest.read(self.path)
        self.root = self.path.parent
        self.buffer_shards = max(1, int(buffer_shards))
        for shard in self.manifest.shards:
            if not (self.root / shard.file).is_file():
                raise DataError(f"activation shard {self.root / shard.file} listed in {self.path} is missing")

    @property
    def d_model(self) -> int:
        return self.manifest.d_model

    @property
    def n_tokens(self) -> int:
        return self.manifest.n_tokens

    @property
    def n_shards(self) -> int:
        return len(self.manifest.shards)

    def __len__(self) -> int:
        return self.n_tokens

    def _load(self, index: int, keys: Sequence[str] = ("acts",)) -> dict[str, torch.Tensor]:
        shard = self.manifest.shards[index]
        path = self.root / shard.file
        try:
            with safe_open(str(path), framework="pt") as fh:
                out = {k: fh.get_tensor(k) for k in keys}
        except Exception as err:
            raise DataError(f"cannot read activation shard {path}: {err}") from err
        acts = out.get("acts")
        if acts is not None and (
            acts.ndim != 2 or acts.shape[0] != shard.rows or acts.shape[1] != self.d_model
        ):
            raise DataError(
                f"activation shard {path} holds acts of shape {tuple(acts.shape)}; the manifest "
                f"says ({shard.rows}, {self.d_model})"
            )
        return out

    def iter_batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epochs: int = 1,
        dtype: torch.dtype = torch.float32,
        buffer_shards: int | None = None,
        max_norm: float = float("inf"),
    ) -> Iterator[torch.Tensor]:
        """Yield [batch, d] tensors covering every row once per epoch (the last batch may be smaller).

        Rows whose L2 norm exceeds `max_norm` are left out (saeflow.outliers).

        At most `buffer_shards` shards are loaded at once; with shuffle, the shard order and the rows
        inside each buffer are permuted by a generator seeded with `seed` (deterministic).
        """
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1; got {batch_size}")
        buffer = max(1, int(buffer_shards or self.buffer_shards))
        gen = torch.Generator().manual_seed(int(seed))
        for _ in range(int(epochs)):
            order = (
                torch.randperm(self.n_shards, generator=gen).tolist()
                if shuffle
                else list(range(self.n_shards))
            )
            carry: torch.Tensor | None = None
            for start in range(0, len(order), buffer):
                parts = [] if carry is None else [carry]
                parts += [self._load(i)["acts"] for i in order[start : start + buffer]]
                rows = torch.cat(parts)
                del parts
                if max_norm != float("inf"):
                    rows = rows[inlier_mask(rows, max_norm)]
                if shuffle:
                    rows = rows[torch.randperm(len(rows), generator=gen)]
                full = len(rows) // batch_size * batch_size
                for s in range(0, full, batch_size):
                    yield rows[s : s + batch_size].to(dtype)
                carry = rows[full:].clone() if full < len(rows) else None
                del rows
            if carry is not None:
                yield carry.to(dtype)

    def iter_rows(self, batch_size: int = 4096, *, dtype: torch.dtype = torch.float32) -> Iterator[Rows]:
        """Yield blocks of at most `batch_size` rows in storage order, with token ids, doc index, position."""
        for i in range(self.n_shards):
            shard = self._load(i, _SHARD_KEYS)
            for s in range(0, len(shard["acts"]), batch_size):
                yield Rows(
                    shard["acts"][s : s + batch_size].to(dtype),
                    *(shard[k][s : s + batch_size] for k in _SHARD_KEYS[1:]),
                )

    def mean_norm(self, sample_rows: int = 4096, *, seed: int = 0, max_norm: float = float("inf")) -> float:
        """Mean L2 norm of `sample_rows` rows drawn uniformly without replacement (all rows if fewer),
        leaving out rows whose norm exceeds `max_norm`."""
        return inlier_mean(self.sample_norms(sample_rows, seed=seed), max_norm)

    def sample_norms(self, sample_rows: int = 4096, *, seed: int = 0) -> torch.Tensor:
        """L2 norms of `sample_rows` rows drawn uniformly without replacement (all rows if fewer)."""
        if sample_rows >= self.n_tokens:
            picked = torch.arange(self.n_tokens)
        else:
            gen = torch.Generator().manual_seed(int(seed))
            picked = torch.randperm(self.n_tokens, generator=gen)[:sample_rows].sort().values
        norms, offset = [], 0
        for i, shard in enumerate(self.manifest.shards):
            local = picked[(picked >= offset) & (picked < offset + shard.rows)] - offset
            if len(local):
                norms.append(self._load(i)["acts"][local].float().norm(dim=1))
            offset += shard.rows
        return torch.cat(norms) if norms else torch.zeros(0)
