"""Snakemake adapter: the protein study's tables and figures (fidelity + concepts, or steering)."""

import pandas as pd

from saeflow.io import read_json
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.protein.report import (
    concepts_figure,
    concepts_table,
    fidelity_figure,
    fidelity_table,
    steering_figure,
    steering_table,
)
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    out, e = snakemake.output, snakemake.params.entries
    if hasattr(out, "steering"):
        trials = pd.concat([pd.read_csv(p) for p in snakemake.input.steering], ignore_index=True)
        table = steering_table(trials)
        write_table(
            table,
            out.steering,
            out.steering_md,
            preamble=(
                f"Steering {e['model']} L{e['layer']} toward `{e['concept']}`: helix_fraction = "
                "oracle-predicted helix "
                f"share; motif = {e['motif']}; naturalness: log_likelihood (unsteered model, nats/residue), "
                "composition_kl (vs training chains), low_complexity.\n\n"
            ),
        )
        steering_figure(table, out.fig_steering)
        return
    summaries = [read_json(p) for p in snakemake.input.summaries]
    best = {s["unit"]: pd.read_csv(p) for s, p in zip(summaries, snakemake.input.best, strict=True)}
    fid = fidelity_table(summaries, e["specs"])
    write_table(
        fid,
        out.fidelity,
        out.fidelity_md,
        preamble=(
            f"Fidelity of SAEs spliced into {e['model']} layer {e['layer']} (test chains; % CE recovered vs "
            "zero- and "
            "mean-ablation; prot-neurons is the identity).\n\n"
        ),
    )
    conc = concepts_table(summaries, best)
    write_table(
        conc,
        out.concepts,
        out.concepts_md,
        preamble=(
            "Concept coverage: best test F1 per concept (latent and threshold picked on validation chains; "
            "covered = "
            "F1 > 0.5), SAEs vs raw neurons vs a random SAE.\n\n"
        ),
    )
    fidelity_figure(fid, out.fig_fidelity)
    concepts_figure(conc, out.fig_concepts)


run_main(main)
