"""Snakemake adapter: results/tables/convergence.{csv,md} and the training-curve figure."""

from saeflow.io import read_json
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.convergence.report import CONTROL_TOLERANCE, convergence_table, plot_training_curves
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    specs = snakemake.params.specs
    metrics = dict(zip(specs, snakemake.input.metrics, strict=True))
    write_table(
        convergence_table(specs, metrics),
        snakemake.output.csv,
        snakemake.output.md,
        preamble=(
            "# Convergence (held-out FVU on the monitor set; a converged parent gains at most "
            f"{CONTROL_TOLERANCE:.0%} from a finetune on its own distribution)\n\n"
        ),
    )
    scratch = {n: read_json(p)["curve"] for n, p in metrics.items() if not specs[n].get("init_from")}
    plot_training_curves(scratch, snakemake.output.figure)


run_main(main)
