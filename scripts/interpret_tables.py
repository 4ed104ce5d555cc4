"""Snakemake adapter: autointerp.csv (every SAE x latent x scorer), autointerp_summary.{csv,md} and the index
of the dashboards."""

import pandas as pd

from saeflow.interpret.dashboard import write_site_index
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.interpret.analysis import summarise
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p, out = snakemake.params, snakemake.output
    scores = pd.concat([pd.read_csv(f) for f in snakemake.input.scores], ignore_index=True)
    write_table(scores, out.csv)
    summary = summarise(scores, p.threshold, order=p.saes)
    write_table(
        summary,
        out.summary_csv,
        out.summary_md,
        floatfmt=".3f",
        preamble=f"Token-pattern explanations of {p.n_latents} sampled latents per SAE (interpret.contexts); "
        "`*_control`: the same contexts scored with another latent's explanation (shuffled).\n\n",
    )
    write_site_index(out.index, dict(zip(p.saes, snakemake.input.dashboards, strict=True)))


run_main(main)
