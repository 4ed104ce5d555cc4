"""Snakemake adapter: general-corpus text for the bias SSAE, by dense retrieval with the ambiguous bios as
seeds."""

from pathlib import Path

from saeflow.errors import DataError
from saeflow.io import read_json, read_jsonl, write_json, write_jsonl
from saeflow.retrieval import lm_token_counter, load_embedder, load_index
from saeflow.runtime import provenance, redirect_to, run_main, set_threads
from saeflow.studies.bias_in_bios.study import read_set, retrieve_for_bios

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, inp = snakemake.params, snakemake.input
    seeds = read_set(inp.seeds).text.tolist()
    general = list(read_jsonl(inp.general))
    cached = read_json(inp.general_json)["ids"]
    if cached != [d["id"] for d in general[: len(cached)]]:
        raise DataError(
            f"the embedding cache {inp.general_json} does not match the general corpus; rebuild it"
        )
    sel, candidates = retrieve_for_bios(
        seeds,
        general,
        load_index(inp.general_faiss),
        load_embedder(p.embedder_source),
        lm_token_counter(Path(inp.model).parent, p.max_length),
        budget_tokens=p.budget_tokens,
        top_k=p.top_k,
    )
    docs = sel.documents(candidates)
    write_jsonl(snakemake.output.texts, docs)
    write_json(
        snakemake.output.json,
        {
            "n_seeds": len(seeds),
            "n_candidates": len(candidates),
            "n_documents": len(sel),
            "n_tokens": sel.n_tokens,
            "budget_tokens": sel.budget_tokens,
            "exhausted": sel.exhausted,
            "mean_score": float(sel.scores.mean()) if len(sel) else None,
            "examples": [d["text"][:200] for d in docs[:10]],
            "documents": sel.records(candidates),
            "provenance": provenance(
                {"budget_tokens": p.budget_tokens, "top_k": p.top_k}, inputs=[inp.seeds]
            ),
        },
    )


run_main(main)
