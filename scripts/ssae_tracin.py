"""Snakemake adapter: re-rank one subdomain's retrieved candidates by their TracIn score toward the seeds
(saeflow.studies.ssae.tracin) and take them up to the selection budget."""

import time
from pathlib import Path

import numpy as np
import torch

from saeflow.activations import ActivationStore
from saeflow.io import read_json, read_jsonl, write_json, write_jsonl
from saeflow.outliers import inlier_mask
from saeflow.retrieval import lm_token_counter
from saeflow.runtime import provenance, redirect_to, run_main, set_threads
from saeflow.studies.ssae.specs import build_pool, selection_record, tracin_rerank
from saeflow.studies.ssae.tracin import read_snapshots, tracin_scores

snakemake = globals()["snakemake"]


def _rows(manifest: str, max_norm: float) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The rows of an activation set the SAE would train on (norm ≤ max_norm), their document index and the
    document ids."""
    store = ActivationStore(manifest)
    acts, docs = [], []
    for block in store.iter_rows():
        keep = inlier_mask(block.acts, max_norm)
        acts.append(block.acts[keep])
        docs.append(block.doc_index[keep].long())
    return torch.cat(acts), torch.cat(docs), list(store.manifest.docs)


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, inp = snakemake.params, snakemake.input
    count = lm_token_counter(Path(inp.model).parent, p.max_length)
    pool = build_pool(
        list(read_jsonl(inp.general)),
        list(read_jsonl(inp.domain)),
        n_general=p.pool["general_documents"],
        n_seeds=p.seeds,
        n_hidden=p.pool["domain_documents"],
        count_tokens=count,
    )
    t0 = time.perf_counter()
    sae_dir = Path(inp.sae).parent
    max_norm = read_json(inp.sae_metrics).get("outlier_max_norm") or float("inf")
    cand_rows, doc_index, doc_ids = _rows(inp.candidate_acts, max_norm)
    seed_rows, _, _ = _rows(inp.seed_acts, max_norm)
    snapshots = read_snapshots(sae_dir)
    scores = tracin_scores(sae_dir, snapshots, cand_rows, doc_index, len(doc_ids), seed_rows)
    candidate_ids = [d["id"] for d in read_json(inp.candidates)["documents"]]
    by_id = dict(zip(doc_ids, scores.scores.tolist(), strict=True))
    doc_scores = np.array([by_id.get(c, np.nan) for c in candidate_ids], dtype=np.float64)
    sel = tracin_rerank(pool.candidates, candidate_ids, doc_scores, p.budget_tokens, p.method)
    seconds = time.perf_counter() - t0
    settings = {"budget_tokens": p.budget_tokens, "seeds": p.seeds, "pool": p.pool, "tracin": p.tracin}
    record = selection_record(
        sel, pool.candidates, pool, subdomain=p.subdomain, method=p.method, settings=settings
    )
    record["tracin"] = {
        "snapshots": [{"step": s.step, "lr": s.lr} for s in snapshots],
        "candidates": len(candidate_ids),
        "candidate_tokens": int(cand_rows.shape[0]),
        "seed_tokens": int(seed_rows.shape[0]),
    }
    record["provenance"] = provenance(settings, inputs=[inp.candidates])
    write_jsonl(snakemake.output.texts, sel.documents(pool.candidates))
    write_json(snakemake.output.json, record)
    q = record["quality"]
    print(
        f"{p.subdomain} {p.method}: {len(sel)} of {len(candidate_ids)} candidates, {sel.n_tokens} tokens, "
        f"precision {q['precision']}, recall {q['recall']}; TracIn over {len(snapshots)} snapshots in "
        f"{seconds:.1f} s"
    )


run_main(main)
