"""Snakemake adapter: per-token residuals of one Bias-in-Bios set (position 0 excluded) and their mean per
text."""

from pathlib import Path

from saeflow.activations import ActivationStore, extract_activations
from saeflow.models.causal_lm import load_lm
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.studies.bias_in_bios.debias import check_docs, pool_by_doc
from saeflow.studies.bias_in_bios.study import read_set, save_arrays

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    frame = read_set(snakemake.input.texts)
    lm = load_lm(Path(snakemake.input.model).parent, dtype=p.model["dtype"], device=p.device)
    out_dir = Path(snakemake.output.manifest).parent
    docs = frame[["id", "text"]].to_dict("records")
    extract_activations(
        lm,
        docs,
        p.model["layer"],
        out_dir,
        max_tokens=len(docs) * p.max_length,
        batch_size=p.model["batch_size"],
        max_length=p.max_length,
        shard_rows=p.shard_rows,
        dtype=p.dtype,
        progress=False,
    )
    store = ActivationStore(snakemake.output.manifest)
    check_docs(store, frame.id.tolist())
    save_arrays(snakemake.output.pooled, x=pool_by_doc(store, len(frame)))


run_main(main)
