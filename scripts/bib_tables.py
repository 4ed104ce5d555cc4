"""Snakemake adapter: results/tables/bias_in_bios.{csv,md} and results/tables/scr.csv."""

from saeflow.io import atomic_path, read_json
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.bias_in_bios.study import gap_note, main_table, markdown_table, scr_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p = snakemake.params
    baseline = read_json(snakemake.input.baseline)["rows"]
    shifts = [read_json(path) for path in snakemake.input.shifts]
    table = main_table(baseline, shifts)
    with atomic_path(snakemake.output.csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(snakemake.output.md) as tmp:
        tmp.write_text(
            markdown_table(
                table,
                read_json(snakemake.input.stats),
                p.model["name"],
                p.model["layer"],
                p.bib["n_latents"],
                note=gap_note(shifts),
            )
        )
    with atomic_path(snakemake.output.scr) as tmp:
        scr_table(shifts).to_csv(tmp, index=False)


run_main(main)
