"""Snakemake adapter: one SAE's top activations, explanations + scores (beside the shuffled control) and
dashboard (saeflow.interpret.pipeline)."""

import time
from pathlib import Path

from saeflow.activations import ActivationStore
from saeflow.interpret.pipeline import interpret_sae, write_sae_dashboard
from saeflow.io import write_json
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.interpret.analysis import autointerp_columns
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    from saeflow.models.causal_lm import load_lm

    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, out = snakemake.params, snakemake.output
    cfg = p.settings
    start = time.perf_counter()
    sae = load_sae(Path(snakemake.input.cfg).parent)
    lm = load_lm(Path(snakemake.input.model).parent)
    store = ActivationStore(snakemake.input.acts)
    done = interpret_sae(sae, store, lm.tokenizer, cfg, sae_name=p.sae, embedder=p.embedder)
    done.acts.save(Path(out.latents).parent)
    print(
        f"top activations: {done.acts.n_rows} rows x {done.acts.d_sae} latents in {done.acts.seconds:.1f} s"
    )
    write_table(done.result.scores, out.scores)
    write_json(out.columns, autointerp_columns(done.result.scores, cfg["threshold"]))
    W_U = lm.model.get_output_embeddings().weight.detach()
    write_sae_dashboard(
        Path(out.dashboard).parent, p.sae, done.acts, done.result, done.decode, sae.W_dec.detach(), W_U, cfg
    )
    det = done.result.scores[done.result.scores.scorer == "detection"]
    print(
        f"{len(done.result.latents)} latents; detection balanced accuracy {det.balanced_accuracy.mean():.3f} "
        f"vs control {det.control_balanced_accuracy.mean():.3f}; {time.perf_counter() - start:.1f} s"
    )


run_main(main)
