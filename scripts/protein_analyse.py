"""Snakemake adapter: one protein unit set (trained SAE, raw neurons or random SAE): fidelity, L0 / FVU,
concepts."""

import numpy as np

from saeflow.io import write_json
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.studies.protein.pipeline import analyse_units, load_protein_model, load_units, read_records
from saeflow.studies.protein.specs import SPLITS
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, inp = snakemake.params, snakemake.input
    model = load_protein_model(p.model, p.source, p.device)
    units = load_units(p.kind, p.sae_dir, int(p.seed))
    result = analyse_units(
        units,
        model=model,
        layer=int(p.model["layer"]),
        manifests={s: inp[f"acts_{s}"] for s in SPLITS},
        records={s: read_records(inp[f"records_{s}"]) for s in SPLITS},
        thresholds=p.concepts.get("thresholds", [0.0, 0.15, 0.5, 0.6, 0.8]),
        concept_names=p.concepts.get("names"),
        fidelity_chains=int(p.fidelity.get("chains", 120)),
        batch_size=int(p.model["batch_size"]),
    )
    write_table(result["latents"], snakemake.output.concepts)
    write_table(result["best"], snakemake.output.best)
    np.savez(snakemake.output.arrays, **result["arrays"])
    write_json(
        snakemake.output.summary, {"unit": snakemake.wildcards.unit, "kind": p.kind, **result["summary"]}
    )


run_main(main)
