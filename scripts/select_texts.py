"""Snakemake adapter: select one subdomain's training text with one method
(saeflow.studies.ssae.specs.run_selection)."""

import time
from pathlib import Path

import numpy as np

from saeflow.errors import DataError
from saeflow.io import read_json, read_jsonl, write_json, write_jsonl
from saeflow.retrieval import lm_token_counter, load_embedder
from saeflow.runtime import provenance, redirect_to, run_main
from saeflow.studies.ssae.specs import build_pool, load_embedding_cache, run_selection, selection_record

snakemake = globals()["snakemake"]


def _check_cache(meta_path, docs, corpus):
    ids = read_json(meta_path)["ids"]
    if ids != [d["id"] for d in docs[: len(ids)]]:
        raise DataError(f"the embedding cache {meta_path} does not match {corpus}'s documents; rebuild it")
    return ids


def main():
    redirect_to(snakemake.log[0])
    p, inp = snakemake.params, snakemake.input
    count = lm_token_counter(Path(inp.model).parent, p.max_length)
    general = list(read_jsonl(inp.general))
    domain = list(read_jsonl(inp.domain))
    pool = build_pool(
        general,
        domain,
        n_general=p.pool["general_documents"],
        n_seeds=p.seeds,
        n_hidden=p.pool["domain_documents"],
        count_tokens=count,
    )
    extra = {}
    if p.method == "dense":
        _check_cache(inp.general_json, general, "the general corpus")
        _check_cache(inp.domain_json, domain, p.subdomain)
        _, general_index = load_embedding_cache(Path(inp.general_npy).with_suffix(""))
        domain_emb = np.load(inp.domain_npy)
        extra = {
            "general_index": general_index,
            "domain_embeddings": domain_emb,
            "embedder": load_embedder(p.embedder_source) if p.queries else None,
        }
    t0 = time.perf_counter()
    sel, candidates = run_selection(
        p.method,
        pool,
        domain,
        budget_tokens=p.budget_tokens,
        top_k=p.top_k,
        seed=p.seed,
        count_tokens=count,
        queries=p.queries,
        **extra,
    )
    seconds = time.perf_counter() - t0
    settings = {
        "budget_tokens": p.budget_tokens,
        "seeds": p.seeds,
        "queries": p.queries,
        "pool": p.pool,
        "top_k": p.top_k,
        "seed": p.seed,
    }
    record = selection_record(
        sel, candidates, pool, subdomain=p.subdomain, method=p.method, settings=settings
    )
    record["provenance"] = provenance(settings, seed=p.seed)
    write_jsonl(snakemake.output.texts, sel.documents(candidates))
    write_json(snakemake.output.json, record)
    q = record["quality"]
    print(
        f"{p.subdomain} {p.method}: {len(sel)} documents, {sel.n_tokens} tokens, "
        f"precision {q['precision']}, recall {q['recall']}; selected in {seconds:.1f} s (timings: "
        "benchmarks/)"
    )


run_main(main)
