"""Snakemake adapter: the SAEBench-protocol letter set (saeflow.absorption_icl.build_letter_set) of the run's
model at one layer: ICL-prompt residuals of a sampled vocabulary and the letter probes fitted on them."""

from pathlib import Path

from saeflow.absorption_icl import IclAbsorptionSettings, build_letter_set
from saeflow.models.causal_lm import load_lm
from saeflow.runtime import redirect_to, run_main, set_threads

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    lm = load_lm(Path(snakemake.input.model).parent, dtype=p.dtype, device=p.device)
    settings = IclAbsorptionSettings.from_dict(p.settings)
    build_letter_set(lm, int(snakemake.wildcards.layer), settings).save(snakemake.output.letters)


run_main(main)
