"""Snakemake adapter: the rows of the radlabels reports' activation set that MAIRA-2-style token filtering
keeps (saeflow.studies.maira2.data), written as the set the study's SAE trains on."""

from pathlib import Path

from saeflow.activations import ActivationStore
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.maira2.data import read_radlabels, row_mask, token_filter, write_kept_rows

snakemake = globals()["snakemake"]


def main():
    from saeflow.models.causal_lm import load_lm

    redirect_to(snakemake.log[0])
    p = snakemake.params
    store = ActivationStore(snakemake.input.acts)
    extracted = set(store.manifest.docs)
    documents = [d for d in read_radlabels(p.asset_dir).documents() if d["id"] in extracted]
    tokenizer = load_lm(Path(snakemake.input.model).parent).tokenizer
    filt = token_filter(tokenizer, documents, max_length=p.max_length)
    mask = row_mask(store, filt.masks)
    manifest = write_kept_rows(store, mask, Path(snakemake.output.manifest).parent)
    print(f"kept {manifest.n_tokens} of {len(mask)} stored tokens of {len(extracted)} reports")


run_main(main)
