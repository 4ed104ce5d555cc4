"""Snakemake adapter: spliced evaluation of one SAE (a residual SAE: boosted on its base; with input.residuals:
the SAE plus those residual SAEs) on one held-out text set, or the clean/zero baseline."""

from pathlib import Path

from saeflow.evaluate import BaselineResult, eval_batches, evaluate_baseline, evaluate_sae
from saeflow.io import read_json, read_jsonl, write_json
from saeflow.models.causal_lm import load_lm
from saeflow.runtime import provenance, redirect_to, run_main, set_threads
from saeflow.sae.boosted import load_for_evaluation

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    lm = load_lm(p.model_dir, dtype=p.model["dtype"], device=p.device)
    texts = [doc["text"] for doc in read_jsonl(snakemake.input.texts)]
    batches = eval_batches(lm, texts, max_tokens=p.evaluation["tokens"], batch_size=p.evaluation["batch_size"],
                           max_length=p.model["max_length"])
    layer = p.model["layer"]
    if p.sae is None:
        result = evaluate_baseline(lm, layer, batches, p.evaluation["outlier_norm_ratio"])
        write_json(snakemake.output.json, {**result._asdict(), "eval_set": p.eval_set})
        return
    baseline = BaselineResult(**{k: v for k, v in read_json(snakemake.input.baseline).items() if k != "eval_set"})
    # a residual SAE is evaluated boosted on its base; input.residuals (stacked boosting): added to the SAE
    residuals = getattr(snakemake.input, "residuals", [])
    residuals = [Path(r).parent for r in ([residuals] if isinstance(residuals, str) else residuals)]
    sae = load_for_evaluation(Path(snakemake.input.sae).parent, residuals, device=p.device)
    result = evaluate_sae(lm, layer, sae, batches, baseline, p.evaluation["outlier_norm_ratio"])
    write_json(snakemake.output.json, {
        "sae": p.sae, "eval_set": p.eval_set, **result.row(),
        "provenance": provenance({"evaluation": p.evaluation, "model": p.model}, inputs=[snakemake.input.texts]),
    })


run_main(main)
