"""Snakemake adapter: draw the ambiguous, balanced-test and oracle sets of the Bias-in-Bios study."""

from saeflow.io import write_json
from saeflow.runtime import provenance, redirect_to, run_main
from saeflow.studies.bias_in_bios.study import SET_NAMES, make_sets, shift_config, write_set

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p = snakemake.params
    seed = shift_config(p.bib, p.seed).seed
    # where assets live only locates the files (asset URIs are resolved there); it does not change the sets
    sets, record = make_sets(p.bib, seed, snakemake.config["resources_dir"])
    for name in SET_NAMES:
        write_set(getattr(snakemake.output, name), getattr(sets, name))
    write_json(snakemake.output.stats, {**record, "provenance": provenance(p.bib, seed=seed)})


run_main(main)
