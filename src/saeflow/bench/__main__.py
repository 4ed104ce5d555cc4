"""Micro-benchmarks: ``python -m saeflow.bench SUBCOMMAND [options]``.

extract   residual-stream extraction to shards vs a plain full forward on the same batches.
precision extraction in bfloat16 vs float32: speed, relative error of the stored rows, cross-entropy change.
train     TopK SAE training throughput: sparse fast path vs dense path vs SAELens / EleutherAI sparsify, and
the
          matmul bound.
eval      CPU seconds of one SAE's spliced evaluation job: full forward passes vs the shared cache.
stream    training from a synthetic store larger than the RAM budget: peak RSS, reader and trainer rates.
schedule  seconds of `snakemake -n` on the 200-SAE sweep config.
ortho     OrtSAE penalty: time per step at several widths, overhead relative to a BatchTopK training step.
tables    two runs' result tables (e.g. extraction in bfloat16 vs float32): how far each numeric column moved.

Add a benchmark with a ``_add_<name>(subparsers)`` function that registers a subcommand whose
``func`` takes the parsed args and prints one ``key=value ...`` line.
"""

from __future__ import annotations

import argparse
import random
import shutil
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
    from saeflow.models.causal_lm import encode, length_sorted_batches, load_lm, pad_batch

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
    _extraction_args(p, layer=6, dtype="float32", dtype_help="model dtype")
    p.set_defaults(func=_bench_extract)


def _extraction_args(p: argparse.ArgumentParser, *, layer: int, dtype: str, dtype_help: str) -> None:
    """The options the extraction benchmarks share."""
    p.add_argument(
        "--model-dir", default=DEFAULT_MODEL_DIR, help="prepared HF model dir (default: %(default)s)"
    )
    p.add_argument("--layer", type=int, default=layer)
    p.add_argument("--tokens", type=int, default=4096, help="stored tokens to extract")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--shard-rows", type=int, default=32768)
    p.add_argument("--dtype", default=dtype, help=dtype_help)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--texts", help="JSONL documents with id/text (default: synthetic sentences)")


def _bench_precision(args: argparse.Namespace) -> None:
    """Extraction in a lower compute dtype against float32 on the same documents: speed, the relative error
    of the stored activations and the change in the model's next-token cross-entropy."""
    import torch.nn.functional as F

    from saeflow.activations import ActivationStore, extract_activations
    from saeflow.io import read_jsonl
    from saeflow.models.causal_lm import encode, length_sorted_batches, load_lm, pad_batch

    if args.threads:
        torch.set_num_threads(args.threads)
    docs = list(read_jsonl(args.texts)) if args.texts else synthetic_documents(args.tokens)
    results = {}
    with tempfile.TemporaryDirectory(prefix="saeflow-bench-") as tmp:
        for dtype in ("float32", args.dtype):
            lm = load_lm(args.model_dir, dtype=dtype)
            extract_activations(
                lm,
                docs[:4],
                args.layer,
                Path(tmp) / "warm",
                max_tokens=64,
                batch_size=4,
                max_length=args.max_length,
                shard_rows=64,
                progress=False,
            )
            start = time.perf_counter()
            manifest = extract_activations(
                lm,
                docs,
                args.layer,
                Path(tmp) / dtype,
                max_tokens=args.tokens,
                batch_size=args.batch_size,
                max_length=args.max_length,
                shard_rows=args.shard_rows,
                dtype="float32",
                progress=False,
            )
            seconds = time.perf_counter() - start
            acts = torch.cat(
                list(ActivationStore(Path(tmp) / dtype / "manifest.json").iter_batches(8192, shuffle=False))
            )
            token_lists = encode(
                lm.tokenizer, [d["text"] for d in docs[: len(manifest.docs)]], args.max_length
            )
            nll, count = 0.0, 0
            with torch.inference_mode():
                for group in length_sorted_batches([len(t) for t in token_lists], args.batch_size):
                    ids, mask = pad_batch([token_lists[i] for i in group], lm.tokenizer.pad_token_id)
                    logits = lm.model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
                    target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
                    nll += float(
                        F.cross_entropy(
                            logits[:, :-1].flatten(0, 1), target.flatten(), ignore_index=-100, reduction="sum"
                        )
                    )
                    count += int((target != -100).sum())
            results[dtype] = (manifest.n_tokens / seconds, acts, nll / count)
            shutil.rmtree(Path(tmp) / "warm")
    (ref_rate, ref, ref_ce), (rate, low, ce) = results["float32"], results[args.dtype]
    rel = (low - ref).norm(dim=-1) / ref.norm(dim=-1).clamp_min(1e-8)
    print(
        f"bench=precision model={lm.name} layer={args.layer}/{lm.n_layers} tokens={ref.shape[0]} "
        f"threads={torch.get_num_threads()} dtype={args.dtype} float32_tokens_per_s={ref_rate:.0f} "
        f"{args.dtype}_tokens_per_s={rate:.0f} speedup={rate / ref_rate:.2f} "
        f"row_rel_error_median={rel.median():.4f} row_rel_error_p99={rel.quantile(0.99):.4f} "
        f"row_rel_error_max={rel.max():.4f} ce_float32={ref_ce:.4f} ce_{args.dtype}={ce:.4f} "
        f"ce_diff={ce - ref_ce:+.4f}"
    )


def _add_precision(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("precision", help="extraction in bfloat16 (or float16) vs float32: speed, error, CE")
    _extraction_args(p, layer=15, dtype="bfloat16", dtype_help="the lower-precision compute dtype")
    p.set_defaults(func=_bench_precision)


def _fmt(rate) -> str:
    return f"{rate.best:.0f}"


def _paired(a: list[float], b: list[float]) -> float:
    """Median over repeats of a[i] / b[i]."""
    import statistics

    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _bench_train(args: argparse.Namespace) -> None:
    import os

    from saeflow.activations import ActivationStore
    from saeflow.bench.perf import (
        Rate,
        TrainerBench,
        encoder_matmul_rate,
        python_has,
        reference_rate_subprocess,
        write_synthetic_store,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    topk = args.architecture == "topk"
    # the dense reference path and the peers (TopK SAEs) exist for TopK only; fast: the sparse kernels picking
    # latents in float32, fast_bf16: in bfloat16 (SAEConfig.select_dtype)
    fast = {"float32": ["fast"], "bfloat16": ["fast_bf16"], "both": ["fast", "fast_bf16"]}[args.select_dtype]
    if not topk or args.path == "fast":
        paths = fast
    else:
        paths = ["dense"] if args.path == "dense" else ["dense", *fast]
    sae = {"architecture": args.architecture, "d_sae": args.d_sae, "k": args.k}
    shape = (args.d_in, args.d_sae, args.k, args.batch, args.steps)
    references = {}  # name -> a function giving one rate, run in a subprocess (its own interpreter)
    peers = (
        ("saelens", "sae_lens", args.saelens_python, "SAELENS_PYTHON"),
        ("sparsify", "sparsify", args.sparsify_python, "SPARSIFY_PYTHON"),
    )
    for name, module, given, env in peers if topk else ():
        python = given or os.environ.get(env) or sys.executable
        if python_has(python, module):
            references[name] = lambda python=python, name=name: (
                reference_rate_subprocess(python, name, *shape, repeats=1).best
            )
        else:
            print(
                f"bench=train reference={name} skipped: {module} does not import in {python} (install "
                f"{'sae-lens' if name == 'saelens' else 'eai-sparsify'} in another environment and pass "
                f"--{name}-python or ${env})",
                file=sys.stderr,
            )
    runs: dict[str, list[float]] = {p: [] for p in [*references, *paths, "bound", "bound_bf16"]}
    losses: dict[str, list[float]] = {p: [] for p in paths}
    with tempfile.TemporaryDirectory(prefix="saeflow-bench-") as tmp:
        store = ActivationStore(
            args.acts or write_synthetic_store(Path(tmp) / "acts", args.steps * args.batch, args.d_in)
        )
        benches = {
            p: TrainerBench(
                store,
                {
                    **sae,
                    "extra": {"fast": p != "dense"} if topk else {},
                    "select_dtype": "bfloat16" if p == "fast_bf16" else "float32",
                },
                args.batch,
                device=args.device,
            )
            for p in paths
        }
        for p in paths:  # warm-up (first-call allocations, kernel choice), untimed
            benches[p].rate(1)
        for _ in range(args.repeats):  # interleaved, so load from other processes hits every path alike
            for name, measure in references.items():
                runs[name].append(measure())
            for p in paths:
                run = benches[p].run(args.steps)
                runs[p].append(run.rate)
                losses[p].append(run.final_loss)
            for name, dtype in (("bound", torch.float32), ("bound_bf16", torch.bfloat16)):
                runs[name].append(
                    encoder_matmul_rate(args.d_in, args.d_sae, args.batch, device=args.device, dtype=dtype)
                )
    rates = {p: Rate.of(r) for p, r in runs.items()}
    common = (
        f"architecture={args.architecture} d_in={args.d_in} d_sae={args.d_sae} k={args.k} batch={args.batch} "
        f"steps={args.steps} "
        f"threads={torch.get_num_threads()} device={args.device}"
    )
    for name in references:
        ref = rates[name]
        print(
            f"bench=train path={name} {common} activations_per_s={_fmt(ref)} "
            f"median={ref.median:.0f} runs={','.join(f'{r:.0f}' for r in ref.runs)}"
        )
    for p in paths:
        r = rates[p]
        # the same seed and data on every path: the last step's loss shows what the selection dtype changes
        extra = f" final_loss={losses[p][-1]:.4g}"
        if p.startswith("fast"):
            # ratios: best/best, and the median over repeats of the same-repeat ratio (the pairs ran back to
            # back, so they saw about the same load from other processes)
            if "dense" in rates:
                extra += (
                    f" dense_per_s={_fmt(rates['dense'])} vs_dense={r.best / rates['dense'].best:.2f}"
                    f" vs_dense_paired={_paired(runs[p], runs['dense']):.2f}"
                )
            for name in references:
                extra += (
                    f" {name}_per_s={_fmt(rates[name])} vs_{name}={r.best / rates[name].best:.2f}"
                    f" vs_{name}_paired={_paired(runs[p], runs[name]):.2f}"
                )
            bound = rates["bound"].best
            extra += f" matmul_bound_per_s={bound:.0f} of_bound={r.best / bound:.2f}"
            if p == "fast_bf16":
                bound_bf16 = rates["bound_bf16"].best
                extra += f" bf16_matmul_bound_per_s={bound_bf16:.0f} of_bf16_bound={r.best / bound_bf16:.2f}"
                if "fast" in rates:
                    extra += (
                        f" vs_fast_fp32={r.best / rates['fast'].best:.2f}"
                        f" vs_fast_fp32_paired={_paired(runs[p], runs['fast']):.2f}"
                    )
        print(
            f"bench=train path={p} {common} activations_per_s={_fmt(r)} median={r.median:.0f} "
            f"runs={','.join(f'{x:.0f}' for x in r.runs)}{extra}"
        )


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="TopK SAE training throughput (fast vs dense path vs SAELens / sparsify)"
    )
    p.add_argument(
        "--architecture",
        choices=["topk", "batchtopk", "matryoshka", "ortsae", "jumprelu"],
        default="topk",
        help="the SAE trained; the dense path and the peers (TopK) only with topk",
    )
    p.add_argument("--d-in", type=int, default=576)
    p.add_argument("--d-sae", type=int, default=4608)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=10, help="timed steps per run")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per path (best and median are printed)")
    p.add_argument(
        "--acts",
        help="an activation set's manifest.json to train on (e.g. results/activations/smollm2-135m/L15/"
        "general.train/manifest.json; its d_model must be --d-in), instead of synthetic sparse rows",
    )
    p.add_argument(
        "--path",
        choices=["fast", "dense", "both"],
        default="both",
        help="fast: sparse TopK kernels (the SAE's default); dense: the straightforward path",
    )
    p.add_argument(
        "--select-dtype",
        choices=["float32", "bfloat16", "both"],
        default="both",
        help="dtype of the fast path's latent-picking matmul (SAEConfig.select_dtype): fast / fast_bf16",
    )
    p.add_argument(
        "--saelens-python",
        help="interpreter with sae_lens installed, for the reference figure "
        "(default: $SAELENS_PYTHON, else this one if sae_lens imports, else none)",
    )
    p.add_argument(
        "--sparsify-python",
        help="interpreter with EleutherAI sparsify (eai-sparsify) installed "
        "(default: $SPARSIFY_PYTHON, else this one if sparsify imports, else none)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.set_defaults(func=_bench_train)


def _bench_eval(args: argparse.Namespace) -> None:
    from saeflow.bench.perf import eval_job_cpu_seconds
    from saeflow.io import write_jsonl
    from saeflow.sae import make_sae

    with tempfile.TemporaryDirectory(prefix="saeflow-bench-") as tmp:
        texts = args.texts
        if texts is None:
            texts = Path(tmp) / "texts.jsonl"
            write_jsonl(texts, synthetic_documents(args.tokens * 2, seed=1))
        sae_dir = args.sae_dir
        if sae_dir is None:
            sae_dir = Path(tmp) / "sae"
            sae = make_sae(
                {"architecture": "topk", "d_in": args.d_model, "d_sae": args.d_sae, "k": args.k}, seed=0
            )
            sae.save(sae_dir)
        job = {
            "model_dir": args.model_dir,
            "sae_dir": str(sae_dir),
            "texts": str(texts),
            "cache": str(Path(tmp) / "cache.safetensors"),
            "layer": args.layer,
            "tokens": args.tokens,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
        }
        build_s, _ = eval_job_cpu_seconds(args.python, mode="build", **job)
        modes = ["full", "cached", "cached-ours", "cached-ours-bf16"]
        cpu: dict[str, list[float]] = {m: [] for m in modes}
        rows: dict[str, dict] = {}
        for _ in range(args.repeats):  # interleaved: load from other processes hits every mode alike
            for m in modes:
                s, rows[m] = eval_job_cpu_seconds(args.python, mode=m, **job)
                cpu[m].append(s)
    full, ours, low = rows["full"], rows["cached"], rows["cached-ours-bf16"]
    diff = max(abs(full[k] - ours[k]) for k in ("fvu", "ce_sae", "delta_ce", "kl", "l0"))
    best = {m: min(v) for m, v in cpu.items()}
    print(
        f"bench=eval model_dir={args.model_dir} sae={args.sae_dir or 'random-topk'} layer={args.layer} "
        f"tokens={args.tokens} threads=1 "
        f"build_cache_cpu_s={build_s:.1f} full_cpu_s={best['full']:.1f} cached_cpu_s={best['cached']:.1f} "
        f"cached_ours_only_cpu_s={best['cached-ours']:.1f} ratio={best['cached'] / best['full']:.2f} "
        f"ratio_ours_only={best['cached-ours'] / best['full']:.2f} max_abs_metric_diff={diff:.2e} "
        f"cached_ours_bf16_cpu_s={best['cached-ours-bf16']:.1f} "
        + " ".join(f"bf16_minus_fp32_{k}={low[k] - ours[k]:+.2e}" for k in ("ce_sae", "delta_ce", "kl"))
        + " "
        + " ".join(f"{m}_runs={','.join(f'{x:.1f}' for x in v)}" for m, v in cpu.items())
    )


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="CPU seconds of one SAE evaluation job: full passes vs the shared cache")
    p.add_argument(
        "--model-dir", default=DEFAULT_MODEL_DIR, help="prepared HF model dir (default: %(default)s)"
    )
    p.add_argument("--d-model", type=int, default=576, help="the model's hidden size (the SAE's d_in)")
    p.add_argument("--layer", type=int, default=15)
    p.add_argument("--tokens", type=int, default=2048, help="scored tokens (config evaluation.tokens)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--d-sae", type=int, default=4608)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="runs per mode (best is printed)")
    p.add_argument("--python", default=sys.executable, help="interpreter of the job processes")
    p.add_argument("--sae-dir", help="a trained SAE's directory (default: a random TopK SAE)")
    p.add_argument("--texts", help="held-out texts (.jsonl; default: synthetic documents)")
    p.set_defaults(func=_bench_eval)


def _bench_stream(args: argparse.Namespace) -> None:
    from saeflow.activations import ActivationStore
    from saeflow.bench.perf import TrainerBench, peak_rss_mb, read_rate, run_phase, write_synthetic_store

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.phase == "read":
        store = ActivationStore(Path(args.store) / "manifest.json")
        rows, rate = read_rate(store, args.batch)
        print(f"phase=read rows={rows} rows_per_s={rate:.0f} peak_rss_mb={peak_rss_mb():.0f}")
        return
    if args.phase == "train":
        store = ActivationStore(Path(args.store) / "manifest.json")
        bench = TrainerBench(store, {"d_sae": args.d_sae, "k": args.k}, args.batch)
        rate = bench.rate(args.train_steps or -(-store.n_tokens // args.batch))
        print(f"phase=train rate={rate:.0f} peak_rss_mb={peak_rss_mb():.0f}")
        return
    rows = int(args.store_gb * 2**30 / (2 * args.d_in))
    with tempfile.TemporaryDirectory(prefix="saeflow-stream-", dir=args.tmp_dir) as tmp:
        start = time.perf_counter()
        write_synthetic_store(Path(tmp), rows, args.d_in, shard_rows=args.shard_rows)
        write_s = time.perf_counter() - start
        common = ["--store", tmp, "--batch", str(args.batch), "--threads", str(args.threads)]
        read = run_phase(["--phase", "read", *common])
        train = run_phase(
            [
                "--phase",
                "train",
                *common,
                "--d-sae",
                str(args.d_sae),
                "--k",
                str(args.k),
                "--train-steps",
                str(args.train_steps),
            ]
        )
    size_gb = rows * args.d_in * 2 / 2**30
    peak = max(float(read["peak_rss_mb"]), float(train["peak_rss_mb"]))
    steps = args.train_steps or -(-rows // args.batch)
    print(
        f"bench=stream store_gb={size_gb:.2f} rows={rows} written_in_s={write_s:.0f} batch={args.batch} "
        f"d_sae={args.d_sae} k={args.k} train_steps={steps} threads={torch.get_num_threads()} "
        f"reader_rows_per_s={read['rows_per_s']} trainer_activations_per_s={train['rate']} "
        f"reader_peak_rss_mb={read['peak_rss_mb']} trainer_peak_rss_mb={train['peak_rss_mb']} "
        f"peak_rss_mb={peak:.0f} under_budget={peak < args.ram_budget_gb * 1024}"
    )


def _add_stream(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stream", help="train from a store larger than the RAM budget: peak RSS, both rates")
    p.add_argument("--store-gb", type=float, default=3.0, help="size of the synthetic float16 store")
    p.add_argument("--ram-budget-gb", type=float, default=2.0)
    p.add_argument("--d-in", type=int, default=576)
    p.add_argument("--d-sae", type=int, default=4608)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--train-steps", type=int, default=100, help="trainer steps (0: one full epoch)")
    p.add_argument("--shard-rows", type=int, default=32768)
    p.add_argument("--tmp-dir", help="where the store is written (default: the system temp dir)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--phase", choices=["all", "read", "train"], default="all", help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    p.set_defaults(func=_bench_stream)


def _bench_schedule(args: argparse.Namespace) -> None:
    from saeflow.bench.perf import dry_run_seconds
    from saeflow.registry import sae_specs

    root = Path(__file__).resolve().parents[2]
    configfile = Path(args.configfile).resolve()
    times, jobs = [], 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="saeflow-schedule-") as tmp:
            seconds, jobs = dry_run_seconds(root / "Snakefile", configfile, Path(tmp))
            times.append(seconds)
    from saeflow.config import load_config_files

    config = load_config_files(root, configfile)
    n_saes = len(sae_specs(config))
    print(
        f"bench=schedule configfile={args.configfile} saes={n_saes} jobs={jobs} "
        f"runs={','.join(f'{t:.2f}' for t in times)} seconds={min(times):.2f}"
    )


def _add_schedule(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedule", help="seconds of snakemake -n on a many-SAE sweep config")
    p.add_argument("--configfile", default="config/sweep200.yaml", help="on top of config/config.yaml")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=_bench_schedule)


def _bench_ortho(args: argparse.Namespace) -> None:
    from saeflow.sae.ortsae import DEFAULT_ORTHO_CHUNK
    from saeflow.studies.architectures.analysis import time_ortho_penalty, time_training_step

    args.chunk = args.chunk or DEFAULT_ORTHO_CHUNK
    if args.threads:
        torch.set_num_threads(args.threads)
    timings = [
        time_ortho_penalty(
            w, args.d_in, args.chunk, steps=args.steps, repeats=args.repeats, device=args.device
        )
        for w in args.widths
    ]
    common = f"d_in={args.d_in} chunk={args.chunk} threads={torch.get_num_threads()} device={args.device}"
    for t in timings:
        print(
            f"bench=ortho {common} width={t.width} penalty_ms={t.penalty_s * 1e3:.1f} "
            f"us_per_latent={t.penalty_s / t.width * 1e6:.2f}"
        )
    width = args.ratio * args.d_in
    cfg = {"architecture": "batchtopk", "d_in": args.d_in, "d_sae": width, "k": args.k}
    step_s = time_training_step(cfg, args.batch, steps=args.steps, repeats=args.repeats, device=args.device)
    pen_s = time_ortho_penalty(
        width, args.d_in, args.chunk, steps=args.steps, repeats=args.repeats, device=args.device
    ).penalty_s
    per_latent = [t.penalty_s / t.width for t in timings]
    print(
        f"bench=ortho {common} width={width} batch={args.batch} k={args.k} "
        f"batchtopk_step_ms={step_s * 1e3:.1f} "
        f"penalty_ms={pen_s * 1e3:.1f} overhead={pen_s / step_s:.1%} target=<10% "
        f"linearity={max(per_latent) / min(per_latent):.2f} (max/min time per latent over the widths; 1 = "
        "linear)"
    )


def _add_ortho(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ortho", help="OrtSAE orthogonality penalty: time per step vs width, overhead vs BatchTopK"
    )
    p.add_argument("--widths", type=int, nargs="+", default=[4096, 8192, 16384])
    p.add_argument("--d-in", type=int, default=576)
    p.add_argument("--chunk", type=int, default=None, help="latents per chunk (default: OrtSAE's default)")
    p.add_argument("--ratio", type=int, default=8, help="overhead measured at width ratio·d_in")
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=5, help="timed calls per repeat")
    p.add_argument("--repeats", type=int, default=3, help="best of this many repeats")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.set_defaults(func=_bench_ortho)


def _bench_tables(args: argparse.Namespace) -> None:
    from saeflow.bench.tables import run_differences
    from saeflow.errors import DataError

    rows = run_differences(args.run_a, args.run_b)
    if not rows:
        raise DataError(f"no tables/*.csv in both {args.run_a} and {args.run_b}")
    for table in dict.fromkeys(r.table for r in rows):
        cols = [r for r in rows if r.table == table]
        changed = sorted((r for r in cols if r.n_changed), key=lambda r: -r.max_rel)
        print(
            f"bench=tables table={table} rows={cols[0].n_rows} numeric_columns={len(cols)} "
            f"changed={len(changed)}"
        )
        for r in changed if args.all else changed[: args.top]:
            print(
                f"  column={r.column} changed_cells={r.n_changed} max_abs={r.max_abs:.4g} "
                f"max_rel={r.max_rel:.3g} at={r.at_key!r}"
            )


def _add_tables(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="two results directories' tables: how far each numeric column moved")
    p.add_argument("run_a", help="a results directory (holding tables/*.csv), e.g. results")
    p.add_argument("run_b", help="the other one, e.g. a run with extraction.compute_dtype: float32")
    p.add_argument("--top", type=int, default=5, help="changed columns printed per table, largest first")
    p.add_argument("--all", action="store_true", help="print every changed column")
    p.set_defaults(func=_bench_tables)


def main(argv: list[str] | None = None) -> None:
    from saeflow.errors import SaeflowError

    parser = argparse.ArgumentParser(prog="python -m saeflow.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    _add_extract(sub)
    _add_precision(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_stream(sub)
    _add_schedule(sub)
    _add_ortho(sub)
    _add_tables(sub)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SaeflowError as err:
        print(f"saeflow error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
