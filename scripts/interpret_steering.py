"""Snakemake adapter: steering of the best-explained latents of one SAE with alpha = 0 and random-latent
controls (saeflow.interpret.steering): steering.{csv,md} (dose-response means), every generation beside the
dashboards, and the dose-response figure."""

from pathlib import Path

import pandas as pd

from saeflow.activations import ActivationStore
from saeflow.interpret.steering import SteerConfig, plot_dose_response, steer_concepts
from saeflow.latents import LatentActivations
from saeflow.runtime import redirect_to, run_main, seed_everything, set_threads
from saeflow.sae import load_sae
from saeflow.studies.interpret.analysis import steering_summary, steering_targets
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    from saeflow.interpret.scorers import sentence_transformer
    from saeflow.models.causal_lm import load_lm

    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    seed_everything(snakemake.params.seed)
    s, out = snakemake.params.steering, snakemake.output
    sae = load_sae(Path(snakemake.input.cfg).parent)
    acts = LatentActivations.load(Path(snakemake.input.latents).parent)
    norm = float(ActivationStore(snakemake.input.acts).sample_norms(4096).median())
    targets = steering_targets(pd.read_csv(snakemake.input.scores), s["n_latents"])
    print(
        f"steering {snakemake.params.sae} at layer {snakemake.params.layer}; median residual norm "
        f"{norm:.2f}; "
        f"targets {targets}"
    )
    lm = load_lm(Path(snakemake.input.model).parent)
    cfg = SteerConfig(
        alphas=tuple(float(a) for a in s["alphas"]),
        max_new_tokens=s["max_new_tokens"],
        n_random=s["n_random"],
        seed=snakemake.params.seed,
    )
    rows = steer_concepts(
        lm,
        sae,
        snakemake.params.layer,
        {c: lat for c, (lat, _) in targets.items()},
        {c: terms for c, (_, terms) in targets.items()},
        list(s["prompts"]),
        acts.frequency,
        norm,
        cfg,
        embed=sentence_transformer(snakemake.params.embedder),
    )
    if rows.empty:
        print("no latent has a non-weak word explanation: nothing steered")
    rows.insert(0, "sae", snakemake.params.sae)
    write_table(rows, out.generations)
    table = steering_summary(rows)
    table.insert(0, "target_latent", [targets.get(c, (-1,))[0] for c in table.concept])
    write_table(
        table,
        out.csv,
        out.md,
        floatfmt=".3g",
        preamble=f"Steering {snakemake.params.sae}: alpha x median residual norm ({norm:.1f}) x unit decoder "
        "direction added at every position; `random`: frequency-matched random latents (means over "
        "them); alpha 0: unsteered. mention: share of generations containing the concept word; "
        "fires: share where the target latent fires on the generated text.\n\n",
    )
    plot_dose_response(
        table if not table.empty else pd.DataFrame(columns=["control", "alpha", "mention", "perplexity"]),
        out.figure,
    )


run_main(main)
