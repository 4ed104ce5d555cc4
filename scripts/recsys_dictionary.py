"""Snakemake adapter: the concept dictionary (latent_dictionary.csv) of one SAE, the untrained SAE or the
raw neurons."""

from pathlib import Path

from saeflow.activations import ActivationStore
from saeflow.models.sasrec import load_sasrec
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.recsys.pipeline import dictionary_for, load_data, store_rows, untrained_sae
from saeflow.studies.recsys.specs import NEURONS, UNTRAINED
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, units = snakemake.params, snakemake.wildcards.units
    store = ActivationStore(snakemake.input.acts)
    if units == NEURONS:
        sae = None
    elif units == UNTRAINED:
        u = p.untrained
        sae = untrained_sae(store.d_model, u["d_sae"], u["k"], store.manifest.mean_norm, u["seed"])
    else:
        sae = load_sae(next(Path(f).parent for f in snakemake.input if f.endswith("/cfg.json"))).eval()
    s = dict(p.settings)
    states = store_rows(store, s.pop("max_rows"))
    model = load_sasrec(Path(snakemake.input.weights).parent)
    df = dictionary_for(states, load_data(p.data), model.net.cfg.max_len, sae, seed=p.seed, **s)
    write_table(df, snakemake.output.csv)


run_main(main)
