"""Snakemake adapter: the shared evaluation cache of one eval set × model × layer (input.texts: token batches,
residual stream, clean CE and KL terms, zero-ablation CEs), or the spliced evaluation of one SAE from that
cache (a residual SAE: boosted on its base; with input.residuals: the SAE plus those residual SAEs)."""

from pathlib import Path

from saeflow.evaluate import EvalCache, build_cache, eval_batches, evaluate_sae_cached
from saeflow.io import read_jsonl, write_json
from saeflow.models.causal_lm import load_lm
from saeflow.runtime import provenance, redirect_to, run_main, set_threads
from saeflow.sae.boosted import load_for_evaluation

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    lm = load_lm(p.model_dir, dtype=p.model["dtype"], device=p.device)
    layer = p.model["layer"]
    ratio = p.evaluation["outlier_norm_ratio"]
    if p.sae is None:
        texts = [doc["text"] for doc in read_jsonl(snakemake.input.texts)]
        batches = eval_batches(
            lm,
            texts,
            max_tokens=p.evaluation["tokens"],
            batch_size=p.evaluation["batch_size"],
            max_length=p.model["max_length"],
        )
        cache = build_cache(lm, layer, batches, ratio)
        cache.stats["eval_set"] = p.eval_set
        cache.save(snakemake.output.cache, snakemake.output.json)
        return
    baseline = Path(snakemake.input.baseline)
    cache_file = getattr(snakemake.input, "cache", None) or baseline.with_suffix(".safetensors")
    cache = EvalCache.load(cache_file, baseline)
    cache.stats.pop("eval_set", None)
    if cache.layer != layer:
        raise ValueError(
            f"evaluation cache {cache_file} is of layer {cache.layer}; the SAE is at layer {layer}"
        )
    # a residual SAE is evaluated boosted on its base; input.residuals (stacked boosting): added to the SAE
    residuals = getattr(snakemake.input, "residuals", [])
    residuals = [Path(r).parent for r in ([residuals] if isinstance(residuals, str) else residuals)]
    sae = load_for_evaluation(Path(snakemake.input.sae).parent, residuals, device=p.device)
    saelens_sets = p.evaluation.get("saelens_eval_sets")
    saelens = saelens_sets is None or p.eval_set in saelens_sets
    result = evaluate_sae_cached(lm, sae, cache, ratio, saelens=saelens)
    write_json(
        snakemake.output.json,
        {
            "sae": p.sae,
            "eval_set": p.eval_set,
            **result.row(),
            "provenance": provenance({"evaluation": p.evaluation, "model": p.model}, inputs=[baseline]),
        },
    )


run_main(main)
