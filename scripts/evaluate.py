"""Snakemake adapter: the shared evaluation cache of one eval set × model × layer (input.texts: token batches,
residual stream, clean CE and KL terms, zero-ablation CEs), or the spliced evaluation of one SAE on every eval
set of params.eval_sets from their caches (input.baselines / input.caches, in that order; a residual SAE:
boosted on its base; with input.residuals: the SAE plus those residual SAEs), SAELens' convention too on
params.saelens_eval_sets. The LM and the SAE load once.
Written as one JSON of all rows (output.json, {"sae", "evals": {eval set: row}}), or one row per file
(output.rows, in params.eval_sets order)."""

from pathlib import Path

from saeflow.evaluate import EvalCache, build_cache, eval_batches, evaluate_sae_cached
from saeflow.io import read_jsonl, write_json
from saeflow.models.causal_lm import load_lm
from saeflow.runtime import provenance, redirect_to, run_main, set_threads
from saeflow.sae.boosted import load_for_evaluation

snakemake = globals()["snakemake"]


def build_baseline(lm, p) -> None:
    texts = [doc["text"] for doc in read_jsonl(snakemake.input.texts)]
    batches = eval_batches(
        lm,
        texts,
        max_tokens=p.evaluation["tokens"],
        batch_size=p.evaluation["batch_size"],
        max_length=p.model["max_length"],
    )
    cache = build_cache(lm, p.model["layer"], batches, p.evaluation["outlier_norm_ratio"])
    cache.stats["eval_set"] = p.eval_set
    cache.save(snakemake.output.cache, snakemake.output.json)


def evaluate_rows(lm, p) -> dict[str, dict]:
    """{eval set: the SAE's row} over params.eval_sets."""
    # a residual SAE is evaluated boosted on its base; input.residuals (stacked boosting): added to the SAE
    residuals = getattr(snakemake.input, "residuals", [])
    residuals = [Path(r).parent for r in ([residuals] if isinstance(residuals, str) else residuals)]
    sae = load_for_evaluation(Path(snakemake.input.sae).parent, residuals, device=p.device)
    baselines, caches = list(snakemake.input.baselines), list(snakemake.input.caches)
    rows = {}
    for eval_set, baseline, cache_file in zip(p.eval_sets, baselines, caches, strict=True):
        cache = EvalCache.load(cache_file, baseline)
        cache.stats.pop("eval_set", None)
        layer = p.model["layer"]
        if cache.layer != layer:
            raise ValueError(
                f"evaluation cache {cache_file} is of layer {cache.layer}; the SAE is at layer {layer}"
            )
        saelens = eval_set in p.saelens_eval_sets
        result = evaluate_sae_cached(lm, sae, cache, p.evaluation["outlier_norm_ratio"], saelens=saelens)
        rows[eval_set] = {
            "sae": p.sae,
            "eval_set": eval_set,
            **result.row(),
            "provenance": provenance({"evaluation": p.evaluation, "model": p.model}, inputs=[baseline]),
        }
    return rows


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    lm = load_lm(p.model_dir, dtype=p.model["dtype"], device=p.device)
    if p.sae is None:
        build_baseline(lm, p)
        return
    rows = evaluate_rows(lm, p)
    if "rows" in snakemake.output.keys():  # noqa: SIM118 (a Namedlist: `in` tests values)
        for eval_set, path in zip(p.eval_sets, snakemake.output.rows, strict=True):
            write_json(path, rows[eval_set])
    else:
        write_json(snakemake.output.json, {"sae": p.sae, "evals": rows})


run_main(main)
