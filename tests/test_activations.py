"""saeflow.activations: extraction to shards on a tiny Llama, and streaming them back."""

from __future__ import annotations

import json
import re
import weakref

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import WORDS, save_tiny_model

from saeflow.activations import ActivationStore, Manifest, extract_activations
from saeflow.errors import DataError
from saeflow.models.causal_lm import load_lm

VOCAB = WORDS[:60]


def make_docs(n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    docs = []
    for i in range(n):
        length = int(torch.randint(1, 14, (1,), generator=g))
        words = torch.randint(0, len(VOCAB), (length,), generator=g).tolist()
        docs.append({"id": f"d{i}", "text": " ".join(VOCAB[w] for w in words)})
    return docs


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_lm(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny-llama"))


@pytest.fixture(scope="module")
def extracted(lm, tmp_path_factory):
    out = tmp_path_factory.mktemp("acts") / "set"
    docs = make_docs(40)
    manifest = extract_activations(
        lm,
        docs,
        1,
        out,
        max_tokens=150,
        batch_size=4,
        max_length=10,
        shard_rows=32,
        chunk_batches=2,
        progress=False,
    )
    return out, docs, manifest


def test_extract_rows_equal_hidden_states(lm, extracted):
    out, docs, manifest = extracted
    assert manifest.n_tokens == 150 and manifest.d_model == 16 and manifest.layer == 1
    assert manifest.dtype == "float16" and manifest.model == "tiny-llama"
    assert [s.rows for s in manifest.shards] == [32, 32, 32, 32, 22]
    seen = 0
    expected_pairs = []
    by_id = {d["id"]: d for d in docs}
    for shard in manifest.shards:
        data = load_file(out / shard.file)
        assert data["acts"].dtype == torch.float16 and data["acts"].shape == (shard.rows, 16)
        assert all(data[k].dtype == torch.int32 for k in ("token_ids", "doc_index", "position"))
        for row in range(shard.rows):
            doc_id = manifest.docs[int(data["doc_index"][row])]
            pos = int(data["position"][row])
            assert pos >= 1  # position 0 never stored
            ids = lm.tokenizer(by_id[doc_id]["text"], truncation=True, max_length=10)["input_ids"]
            assert pos < len(ids)  # never a pad position
            assert int(data["token_ids"][row]) == ids[pos]
            with torch.no_grad():
                hs = lm.model(torch.tensor([ids]), output_hidden_states=True).hidden_states[2][0, pos]
            torch.testing.assert_close(data["acts"][row].float(), hs, atol=2e-3, rtol=2e-3)
            expected_pairs.append((doc_id, pos))
        seen += shard.rows
    assert seen == 150
    # documents come in file order and each contributes positions 1..n-1 (the last one possibly cut)
    order = [d for d, _ in expected_pairs]
    assert list(dict.fromkeys(order)) == list(manifest.docs)
    doc_ids = [d["id"] for d in docs]
    assert [doc_ids.index(d) for d in manifest.docs] == sorted(doc_ids.index(d) for d in manifest.docs)
    for d in manifest.docs[:-1]:
        positions = [p for dd, p in expected_pairs if dd == d]
        n = len(lm.tokenizer(by_id[d]["text"], truncation=True, max_length=10)["input_ids"])
        assert positions == list(range(1, n))


def test_single_token_docs_are_skipped(lm, tmp_path):
    docs = [{"id": "a", "text": "w1"}, {"id": "b", "text": "w1 w2 w3"}, {"id": "c", "text": ""}]
    manifest = extract_activations(
        lm,
        docs,
        0,
        tmp_path / "s",
        max_tokens=100,
        batch_size=2,
        max_length=8,
        shard_rows=100,
        progress=False,
    )
    assert manifest.docs == ("b",) and manifest.n_tokens == 2


def test_manifest_written_last_and_stale_shards_removed(lm, tmp_path, monkeypatch):
    import saeflow.activations as acts_mod

    out = tmp_path / "set"
    out.mkdir()
    (out / "shard_00099.safetensors").write_text("stale")
    (out / "manifest.json").write_text("{}")
    events = []
    real_save, real_write = acts_mod.save_file, acts_mod.write_json

    def save(tensors, path):
        events.append(("shard", (out / "manifest.json").exists()))
        real_save(tensors, path)

    def write(path, obj):
        events.append(("manifest", len(list(out.glob("shard_*.safetensors")))))
        real_write(path, obj)

    monkeypatch.setattr(acts_mod, "save_file", save)
    monkeypatch.setattr(acts_mod, "write_json", write)
    manifest = extract_activations(
        lm, make_docs(20), 2, out, max_tokens=60, batch_size=3, max_length=12, shard_rows=25, progress=False
    )
    assert events[-1] == ("manifest", len(manifest.shards))
    assert all(kind == "shard" and not had_manifest for kind, had_manifest in events[:-1])
    assert sorted(p.name for p in out.glob("shard_*")) == [s.file for s in manifest.shards]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["n_tokens"] == 60 and on_disk["shards"][0] == {
        "file": "shard_00000.safetensors",
        "rows": 25,
    }
    assert on_disk["tokens_per_s"] > 0 and on_disk["elapsed_s"] > 0 and len(on_disk["docs"]) >= 1


def test_small_corpus_stores_what_there_is(lm, tmp_path):
    docs = make_docs(3)
    manifest = extract_activations(
        lm,
        docs,
        0,
        tmp_path / "s",
        max_tokens=10_000,
        batch_size=8,
        max_length=64,
        shard_rows=1000,
        progress=False,
    )
    n = sum(len(lm.tokenizer(d["text"])["input_ids"]) - 1 for d in docs)
    assert manifest.n_tokens == n


def test_bad_documents(lm, tmp_path):
    with pytest.raises(DataError, match="document #1"):
        extract_activations(
            lm,
            [{"id": 0, "text": "w1 w2"}, {"text": 5}],
            0,
            tmp_path / "s",
            max_tokens=10,
            batch_size=2,
            max_length=8,
            shard_rows=10,
            progress=False,
        )
    with pytest.raises(DataError, match="no tokens"):
        extract_activations(
            lm,
            [{"id": 0, "text": "w1"}],
            0,
            tmp_path / "s",
            max_tokens=10,
            batch_size=2,
            max_length=8,
            shard_rows=10,
            progress=False,
        )


# ---------------------------------------------------------------------------------------------- store


def all_rows(batches):
    return torch.cat(list(batches))


def test_store_every_row_once_per_epoch(extracted):
    out, _, _ = extracted
    store = ActivationStore(out / "manifest.json")
    assert store.d_model == 16 and store.n_tokens == len(store) == 150
    reference = torch.cat([r.acts for r in store.iter_rows(batch_size=7)])
    assert reference.shape == (150, 16)
    batches = list(store.iter_batches(20, shuffle=True, seed=3, epochs=2, buffer_shards=2))
    assert all(b.dtype == torch.float32 and b.shape[1] == 16 for b in batches)
    # 150 rows per epoch in batches of 20: 7 full and a last partial batch of 10, twice
    assert [len(b) for b in batches] == [20] * 7 + [10] + [20] * 7 + [10]

    def as_multiset(t):
        return sorted(map(tuple, t.tolist()))

    for epoch in (batches[:8], batches[8:]):
        assert as_multiset(torch.cat(epoch)) == as_multiset(reference)
    assert not torch.equal(torch.cat(batches[:8]), torch.cat(batches[8:]))  # reshuffled each epoch
    in_order = all_rows(store.iter_batches(64, shuffle=False))
    torch.testing.assert_close(in_order, reference)


def test_store_deterministic_per_seed(extracted):
    out, _, _ = extracted
    store = ActivationStore(out / "manifest.json")
    a = all_rows(store.iter_batches(16, seed=1))
    b = all_rows(store.iter_batches(16, seed=1))
    c = all_rows(store.iter_batches(16, seed=2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("buffer", [1, 2, 3])
def test_store_buffer_bounds_loaded_shards(extracted, monkeypatch, buffer):
    out, _, manifest = extracted
    store = ActivationStore(out / "manifest.json")
    alive: list[weakref.ref] = []
    loads = []
    real_load = store._load

    def load(index, keys=("acts",)):
        data = real_load(index, keys)
        loads.append(index)
        alive.extend(weakref.ref(t) for t in data.values())
        assert sum(r() is not None for r in alive) <= buffer  # earlier buffers were released
        return data

    monkeypatch.setattr(store, "_load", load)
    for _ in store.iter_batches(10, seed=0, buffer_shards=buffer):
        assert sum(r() is not None for r in alive) <= buffer
    assert sorted(loads) == list(range(len(manifest.shards)))  # each shard read once per epoch


def test_iter_rows_metadata(extracted):
    out, _, manifest = extracted
    store = ActivationStore(out / "manifest.json")
    blocks = list(store.iter_rows(batch_size=50))
    assert sum(len(b.acts) for b in blocks) == 150
    first = load_file(out / manifest.shards[0].file)
    assert torch.equal(blocks[0].token_ids[:32], first["token_ids"])
    assert torch.equal(blocks[0].position[:32], first["position"])
    assert torch.equal(blocks[0].doc_index[:32], first["doc_index"])


def test_mean_norm(extracted):
    out, _, manifest = extracted
    store = ActivationStore(out / "manifest.json")
    everything = torch.cat([r.acts for r in store.iter_rows()]).norm(dim=1).mean().item()
    assert store.mean_norm(10_000) == pytest.approx(everything, rel=1e-5)
    assert manifest.mean_norm == pytest.approx(everything, rel=1e-2)  # manifest: before the float16 cast
    sample = store.mean_norm(40, seed=1)
    assert sample == store.mean_norm(40, seed=1) and sample > 0


def test_store_bad_manifest(tmp_path, extracted):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "none.json"))):
        ActivationStore(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json"):
        ActivationStore(bad)
    bad.write_text(json.dumps({"layer": 1}))
    with pytest.raises(DataError, match="lacks key"):
        ActivationStore(bad)
    out, _, _ = extracted
    record = json.loads((out / "manifest.json").read_text())
    record["shards"][0]["file"] = "shard_missing.safetensors"
    record["shards"][0]["rows"] = 32
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(record))
    with pytest.raises(DataError, match="shard_missing"):
        ActivationStore(broken)


def test_manifest_roundtrip(extracted):
    out, _, manifest = extracted
    assert Manifest.read(out / "manifest.json") == manifest
