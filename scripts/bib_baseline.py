"""Snakemake adapter: Original (probe on the ambiguous set) and Oracle (probe on the balanced set) rows."""

from saeflow.io import write_json
from saeflow.runtime import provenance, redirect_to, run_main
from saeflow.studies.bias_in_bios.debias import baseline_rows
from saeflow.studies.bias_in_bios.study import labelled, load_array, read_set, shift_config

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    cfg = shift_config(snakemake.params.bib, snakemake.params.seed)
    sets = {
        name: labelled(read_set(snakemake.input[name]), load_array(snakemake.input[f"{name}_x"], "x"))
        for name in ("ambiguous", "test", "oracle")
    }
    rows = baseline_rows(sets["ambiguous"], sets["test"], sets["oracle"], cfg)
    write_json(
        snakemake.output.json,
        {
            "rows": rows,
            "provenance": provenance(
                snakemake.params.bib,
                seed=cfg.seed,
                inputs=[snakemake.input[k] for k in ("ambiguous", "test", "oracle")],
            ),
        },
    )


run_main(main)
