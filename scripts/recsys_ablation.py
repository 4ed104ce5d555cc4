"""Snakemake adapter: concept latents vs random matched latents vs raw neurons, ablated or scaled (error
kept)."""

from pathlib import Path

import pandas as pd

from saeflow.models.sasrec import load_sasrec
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.recsys.pipeline import (
    ablation_figure,
    ablation_summary,
    choose_edits,
    load_data,
    run_ablation,
)
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, s = snakemake.params, snakemake.params.settings
    read = {"keep_default_na": False, "na_values": [""]}
    edits = choose_edits(
        pd.read_csv(snakemake.input.sae_dictionary, **read),
        pd.read_csv(snakemake.input.neuron_dictionary, **read),
        min_confidence=s["min_confidence"],
        max_units=s["max_units"],
        seed=p.seed,
    )
    per_edit = run_ablation(
        load_sasrec(Path(snakemake.input.weights).parent),
        load_sae(next(Path(f).parent for f in snakemake.input if f.endswith("/cfg.json"))).eval(),
        load_data(p.data),
        edits,
        s["scales"],
    )
    write_table(per_edit, snakemake.output.edits)
    summary = ablation_summary(per_edit)
    write_table(summary, snakemake.output.csv, snakemake.output.md)
    ablation_figure(summary, snakemake.output.figure)


run_main(main)
