"""Snakemake adapter: token-type counts of a corpus (LM tokenizer, positions as extraction stores them)."""

import numpy as np
from transformers import AutoTokenizer

from saeflow.io import atomic_path, read_jsonl, write_json
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.ssae.concepts import count_token_types

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p = snakemake.params
    from pathlib import Path

    tok = AutoTokenizer.from_pretrained(str(Path(snakemake.input.model).parent))
    texts = [d["text"] for d in read_jsonl(snakemake.input.texts)]
    if p.max_documents is not None:
        texts = texts[: p.max_documents]
    counts = np.zeros(len(tok), dtype=np.int64)
    for s in range(0, len(texts), 4096):
        ids = tok(texts[s : s + 4096], truncation=True, max_length=p.max_length)["input_ids"]
        counts += count_token_types(ids, len(tok))
    with atomic_path(snakemake.output.npy) as tmp, open(tmp, "wb") as fh:
        np.save(fh, counts)
    write_json(
        snakemake.output.json,
        {
            "documents": len(texts),
            "tokens": int(counts.sum()),
            "types_seen": int((counts > 0).sum()),
            "vocab_size": len(counts),
        },
    )


run_main(main)
