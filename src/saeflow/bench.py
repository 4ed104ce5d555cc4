"""Micro-benchmarks: ``python -m saeflow.bench SUBCOMMAND [options]``.

extract   residual-stream extraction to shards vs a plain full forward on the same batches.

Add a benchmark with a ``_add_<name>(subparsers)`` function that registers a subcommand whose
``func`` takes the parsed args and prints one ``key=value ...`` line.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

DEFAULT_MODEL_DIR = "resources/models/smollm2-135m"

_WORD_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more out other into "
    "time only new some could these two may first then do any like my now over such our man me even most "
    "made after also did many before must through back years where much your way well down should because "
    "each just those people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old year off come "
    "since against go came right used take three patients study hospital treatment clinical protein cells"
)
_WORDS = _WORD_TEXT.split()


def synthetic_documents(
    n_tokens: int, seed: int = 0, words_per_doc: tuple[int, int] = (12, 60)
) -> list[dict]:
    """Deterministic English-like sentences, about `n_tokens` words in all (content does not change cost)."""
    rng = random.Random(seed)
    docs, total = [], 0
    while total < n_tokens * 1.3:
        n = rng.randint(*words_per_doc)
        text = " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."
        docs.append({"id": f"bench{len(docs)}", "text": text})
        total += n
    return docs


def _bench_extract(args: argparse.Namespace) -> None:
    from saeflow.activations import extract_activations
    from saeflow.io import read_jsonl
    from saeflow.lm import encode, length_sorted_batches, load_lm, pad_batch

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_lm(args.model_dir, dtype=args.dtype)
    docs = list(read_jsonl(args.texts)) if args.texts else synthetic_documents(args.tokens)

    def extract() -> tuple[int, float, int]:
        with tempfile.TemporaryDirectory(prefix="saeflow-bench-") as tmp:
            start = time.perf_counter()
            manifest = extract_activations(
                lm,
                docs,
                args.layer,
                Path(tmp),
                max_tokens=args.tokens,
                batch_size=args.batch_size,
                max_length=args.max_length,
                shard_rows=args.shard_rows,
                progress=False,
            )
            return manifest.n_tokens, time.perf_counter() - start, len(manifest.docs)

    with tempfile.TemporaryDirectory(prefix="saeflow-bench-") as tmp:  # warm-up
        extract_activations(
            lm,
            docs[:4],
            args.layer,
            Path(tmp),
            max_tokens=64,
            batch_size=4,
            max_length=args.max_length,
            shard_rows=64,
            progress=False,
        )
    n_tokens, extract_s, n_docs = extract()

    # full forward over exactly the same documents, batched the same way (length-sorted)
    token_lists = encode(lm.tokenizer, [d["text"] for d in docs[:n_docs]], args.max_length)
    start = time.perf_counter()
    with torch.inference_mode():
        for group in length_sorted_batches([len(t) for t in token_lists], args.batch_size):
            ids, mask = pad_batch([token_lists[i] for i in group], lm.tokenizer.pad_token_id)
            lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False)
    full_s = time.perf_counter() - start
    full_tokens = sum(max(len(t) - 1, 0) for t in token_lists)  # same count (positions >= 1) as extraction

    extract_tps, full_tps = n_tokens / extract_s, full_tokens / full_s
    print(
        f"bench=extract model={lm.name} layer={args.layer}/{lm.n_layers} tokens={n_tokens} "
        f"batch_size={args.batch_size} threads={torch.get_num_threads()} "
        f"extract_tokens_per_s={extract_tps:.0f} full_forward_tokens_per_s={full_tps:.0f} "
        f"speedup={extract_tps / full_tps:.2f}"
    )


def _add_extract(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="extraction (run to layer + shard writing) vs full forward")
    p.add_argument(
        "--model-dir", default=DEFAULT_MODEL_DIR, help="prepared HF model dir (default: %(default)s)"
    )
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--tokens", type=int, default=4096, help="stored tokens to extract")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--shard-rows", type=int, default=32768)
    p.add_argument("--dtype", default="float32", help="model dtype")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--texts", help="JSONL documents with id/text (default: synthetic sentences)")
    p.set_defaults(func=_bench_extract)


def main(argv: list[str] | None = None) -> None:
    from saeflow.errors import SaeflowError

    parser = argparse.ArgumentParser(prog="python -m saeflow.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    _add_extract(sub)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SaeflowError as err:
        print(f"saeflow error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
