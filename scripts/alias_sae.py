"""Snakemake adapter: an alias SAE (saeflow.registry.canonical_names) takes its canonical SAE's files (copied:
cfg.json, weights, metrics.json) or its evaluations file (every row's `sae` field renamed to the alias)."""

import shutil

from saeflow.io import atomic_path, read_json, write_json
from saeflow.runtime import redirect_to, run_main

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    if "cfg" not in snakemake.output.keys():  # noqa: SIM118 (a Namedlist: `in` tests values)
        alias, canonical = snakemake.wildcards.sae, snakemake.params.canonical
        evals = read_json(snakemake.input.json)["evals"]
        renamed = {es: {**row, "sae": alias, "alias_of": canonical} for es, row in evals.items()}
        write_json(snakemake.output.json, {"sae": alias, "alias_of": canonical, "evals": renamed})
        return
    for key in ("cfg", "weights", "metrics"):
        with atomic_path(snakemake.output[key]) as tmp:
            shutil.copyfile(snakemake.input[key], tmp)


run_main(main)
