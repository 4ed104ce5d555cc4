"""Snakemake adapter: steering trials of one protein SAE, or (no SAE) the controls: strength 0, difference of
means."""

from pathlib import Path

import numpy as np

from saeflow.io import read_json
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.studies.protein.oracle import SecondaryStructureOracle, composition
from saeflow.studies.protein.pipeline import (
    helix_direction,
    load_protein_model,
    load_units,
    read_records,
    steering_trials,
)
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, inp = snakemake.params, snakemake.input
    model = load_protein_model(p.model, p.source, p.device)
    oracle = SecondaryStructureOracle.from_dict(read_json(inp.oracle))
    train = read_records(inp.records_train)
    background = composition([r.sequence for r in train])
    common = {
        "layer": int(p.model["layer"]),
        "settings": p.steering,
        "oracle": oracle,
        "background": background,
        "seed": int(p.seed),
    }
    if p.sae:
        arrays = dict(np.load(inp.arrays))
        sae = load_units("sae", Path(inp.sae_cfg).parent, int(p.seed))
        df = steering_trials(model, sae=sae, arrays=arrays, sae_name=p.sae, **common)
    else:
        direction, norm = helix_direction(inp.acts_train, train, p.steering.get("concept", "helix"))
        df = steering_trials(model, direction=direction, norm=norm, **common)
    write_table(df, snakemake.output.csv)


run_main(main)
