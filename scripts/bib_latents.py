"""Snakemake adapter: an SAE's latents on every token of one Bias-in-Bios set, mean-pooled per text (f), and
each latent's firing frequency over the set's tokens (freq)."""

from pathlib import Path

import torch

from saeflow.activations import ActivationStore
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.bias_in_bios.compress import FiringCounter
from saeflow.studies.bias_in_bios.debias import pool_by_doc
from saeflow.studies.bias_in_bios.study import save_arrays

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    store = ActivationStore(snakemake.input.manifest)
    sae = load_sae(Path(snakemake.input.sae).parent, device=snakemake.params.device)
    device = torch.device(snakemake.params.device)
    counter = FiringCounter(lambda a: sae.encode(a.to(device)).cpu())
    with torch.no_grad():
        f = pool_by_doc(store, len(store.manifest.docs), fn=counter)
    save_arrays(snakemake.output.latents, f=f, freq=counter.frequency)


run_main(main)
