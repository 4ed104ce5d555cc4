"""Snakemake adapter: one SAE's top activations, explanations + scores (beside the shuffled control) and
dashboard (saeflow.studies.interpret.analysis)."""

import time
from pathlib import Path

from saeflow.activations import ActivationStore
from saeflow.interpret.examples import token_strings
from saeflow.latents import LatentsConfig, top_activations
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.interpret.analysis import (
    cached_decode,
    explain_and_score,
    sample_latents,
    write_sae_dashboard,
)
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    from saeflow.interpret.scorers import sentence_transformer
    from saeflow.models.causal_lm import load_lm

    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, out = snakemake.params, snakemake.output
    cfg = p.settings
    start = time.perf_counter()
    sae = load_sae(Path(snakemake.input.cfg).parent)
    store = ActivationStore(snakemake.input.acts)
    acts = top_activations(
        sae, store, LatentsConfig.from_dict({"seed": cfg["seed"], **(cfg["latents"] or {})})
    )
    acts.save(Path(out.latents).parent)
    print(f"top activations: {acts.n_rows} rows x {acts.d_sae} latents in {acts.seconds:.1f} s")
    latents = sample_latents(acts, cfg["n_latents"], cfg["min_activations"], cfg["seed"])
    lm = load_lm(Path(snakemake.input.model).parent)
    decode = cached_decode(token_strings(lm.tokenizer))
    embed = sentence_transformer(p.embedder) if "embedding" in (cfg["scorers"] or []) else None
    result = explain_and_score(acts, latents, decode, cfg, sae_name=p.sae, embed=embed)
    write_table(result.scores, out.scores)
    W_U = lm.model.get_output_embeddings().weight.detach()
    write_sae_dashboard(Path(out.dashboard).parent, p.sae, acts, result, decode, sae.W_dec.detach(), W_U, cfg)
    det = result.scores[result.scores.scorer == "detection"]
    print(
        f"{len(latents)} latents; detection balanced accuracy {det.balanced_accuracy.mean():.3f} vs control "
        f"{det.control_balanced_accuracy.mean():.3f}; {time.perf_counter() - start:.1f} s"
    )


run_main(main)
