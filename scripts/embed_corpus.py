"""Snakemake adapter: embed the leading training documents of one corpus and build its faiss index
(cached)."""

import time

import numpy as np

from saeflow.io import atomic_path, read_jsonl, write_json
from saeflow.retrieval import build_index, embed_texts, load_embedder, save_index
from saeflow.runtime import provenance, redirect_to, run_main, set_threads

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    docs = []
    for doc in read_jsonl(snakemake.input.texts):
        if len(docs) >= p.n_documents:
            break
        docs.append(doc)
    r = p.retrieval
    t0 = time.perf_counter()
    emb = embed_texts(load_embedder(p.source), [d["text"] for d in docs], batch_size=r["batch_size"])
    seconds = time.perf_counter() - t0
    index = build_index(
        emb,
        r["index"],
        nlist=r["nlist"],
        nprobe=r["nprobe"],
        hnsw_m=r["hnsw_m"],
        ef_search=r["ef_search"],
        seed=p.seed,
    )
    with atomic_path(snakemake.output.npy) as tmp, open(tmp, "wb") as fh:
        np.save(fh, emb)
    save_index(index, snakemake.output.index)
    write_json(
        snakemake.output.meta,
        {
            "corpus": snakemake.wildcards.corpus,
            "embedder": snakemake.wildcards.embedder,
            "n_documents": len(docs),
            "dim": int(emb.shape[1]),
            "index": r["index"],
            "embed_seconds": round(seconds, 2),
            "documents_per_s": round(len(docs) / seconds, 1) if seconds > 0 else None,
            "ids": [d["id"] for d in docs],
            "provenance": provenance({"retrieval": r, "source": p.source}, seed=p.seed),
        },
    )


run_main(main)
