"""Snakemake adapter: FVU, L0, dead share and NDCG@10 / HR@10 kept of each SAE and the untrained control."""

from pathlib import Path

from saeflow.activations import ActivationStore
from saeflow.models.sasrec import load_sasrec
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.recsys.pipeline import load_data, sae_table, store_rows, untrained_sae
from saeflow.studies.recsys.specs import UNTRAINED
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    store = ActivationStore(snakemake.input.acts)
    dirs = {Path(f).parent.name: Path(f).parent for f in snakemake.input if f.endswith("/cfg.json")}
    saes = {name: ("sae", load_sae(dirs[name]).eval()) for name in p.saes}
    u = p.untrained
    saes[UNTRAINED] = (
        "untrained SAE",
        untrained_sae(store.d_model, u["d_sae"], u["k"], store.manifest.mean_norm, u["seed"]),
    )
    df = sae_table(
        load_sasrec(Path(snakemake.input.weights).parent), load_data(p.data), store_rows(store), saes
    )
    write_table(df, snakemake.output.csv, snakemake.output.md)


run_main(main)
