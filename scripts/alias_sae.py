"""Snakemake adapter: an alias SAE (saeflow.registry.canonical_names) takes its canonical SAE's files (copied:
cfg.json, weights, metrics.json) or its evaluation JSON (the `sae` field renamed to the alias)."""

import shutil

from saeflow.io import atomic_path, read_json, write_json
from saeflow.runtime import redirect_to, run_main

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    if "cfg" not in snakemake.output.keys():  # noqa: SIM118 (a Namedlist: `in` tests values)
        record = read_json(snakemake.input.json)
        write_json(
            snakemake.output.json,
            {**record, "sae": snakemake.wildcards.sae, "alias_of": snakemake.params.canonical},
        )
        return
    for key in ("cfg", "weights", "metrics"):
        with atomic_path(snakemake.output[key]) as tmp:
            shutil.copyfile(snakemake.input[key], tmp)


run_main(main)
