"""Snakemake adapter: tail-concept recall and coverage of one SAE on one subdomain's held-out activations."""

from pathlib import Path

import numpy as np

from saeflow.activations import ActivationStore
from saeflow.io import write_json
from saeflow.runtime import provenance, redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.ssae.concepts import concept_report

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, inp = snakemake.params, snakemake.input
    sae = load_sae(Path(inp.sae).parent, device=p.device)
    store = ActivationStore(inp.acts)
    general_counts = np.load(inp.freq)
    c = p.concepts
    report = concept_report(
        sae,
        lambda: store.iter_rows(4096),
        general_counts,
        edges=c["frequency_edges"],
        top_n=c["top_n"],
        dominance=c["dominance"],
        min_count=c["min_count"],
        rare_max_count=c["rare_max_count"],
        fire_threshold=c["fire_threshold"],
        device=p.device,
    )
    write_json(
        snakemake.output.json,
        {
            "sae": p.sae,
            "subdomain": p.subdomain,
            **report.to_dict(),
            "provenance": provenance(c, inputs=[inp.acts]),
        },
    )


run_main(main)
