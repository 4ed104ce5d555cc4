"""Snakemake adapter: SASRec vs popularity, full ranking and sampled negatives (recsys_model table)."""

from pathlib import Path

from saeflow.io import read_json
from saeflow.models.sasrec import load_sasrec
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.studies.recsys.pipeline import load_data, model_table
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    df = model_table(
        load_sasrec(Path(snakemake.input.weights).parent), load_data(p.data), p.negatives, p.seed
    )
    t = read_json(snakemake.input.training)
    pre = (
        f"SASRec: best validation NDCG@10 {t['best_valid_ndcg10']:.4f} at epoch {t['best_epoch']} of "
        f"{t['epochs']} ({t['seconds']:.0f} s); {t['n_users']} users, {t['n_items']} items. Test = each "
        "user's last item.\n\n"
    )
    write_table(df, snakemake.output.csv, snakemake.output.md, preamble=pre)


run_main(main)
