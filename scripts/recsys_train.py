"""Snakemake adapter: train the study's SASRec (early stopping on validation NDCG@10) and save it."""

import logging
from pathlib import Path

from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.studies.recsys.pipeline import load_data, train_model

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    data = load_data(p.data)
    info = train_model(
        data,
        p.model,
        p.train,
        p.seed,
        Path(snakemake.output.weights).parent,
        log=logging.getLogger("recsys").info,
    )
    logging.getLogger("recsys").info("trained: %s", info)


run_main(main)
