"""Snakemake adapter: decoder geometry and first-letter absorption of one SAE
(saeflow.studies.architectures.analysis.analyze_sae) on a held-out activation set, the token strings from the
prepared model's tokenizer, and SAEBench-protocol absorption on the letter set of the SAE's layer."""

from pathlib import Path

import torch

from saeflow.absorption_icl import LetterSet
from saeflow.activations import ActivationStore
from saeflow.io import write_json
from saeflow.runtime import provenance, redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.architectures.analysis import analyze_sae, token_letters

snakemake = globals()["snakemake"]


def main():
    from transformers import AutoTokenizer

    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    store = ActivationStore(snakemake.input.acts)
    rows = list(store.iter_rows())
    acts = torch.cat([r.acts for r in rows])
    token_ids = torch.cat([r.token_ids for r in rows]).tolist()
    tokenizer = AutoTokenizer.from_pretrained(str(Path(snakemake.input.model).parent))
    sae = load_sae(Path(snakemake.input.sae).parent)
    result = analyze_sae(
        sae,
        acts,
        token_letters(token_ids, tokenizer),
        distinct_threshold=p.analysis["distinct_threshold"],
        absorption=p.analysis["absorption"],
        letter_set=LetterSet.load(snakemake.input.letters),
        absorption_icl=p.analysis["absorption_icl"],
    )
    write_json(
        snakemake.output.json,
        {
            "sae": p.sae,
            **result.to_dict(),
            "provenance": provenance(
                {"analysis": p.analysis}, inputs=[snakemake.input.acts, snakemake.input.letters]
            ),
        },
    )


run_main(main)
