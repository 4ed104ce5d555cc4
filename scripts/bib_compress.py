"""Snakemake adapter: an SAE sliced to its most frequently active latents on the ambiguous set's tokens (the
frequencies bib_latents measured), for the compressed rows of the Bias-in-Bios table."""

from pathlib import Path

from saeflow.io import write_json
from saeflow.runtime import provenance, redirect_to, run_main
from saeflow.sae import load_sae
from saeflow.studies.bias_in_bios.compress import CompressConfig, compress
from saeflow.studies.bias_in_bios.study import load_array

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p, inp = snakemake.params, snakemake.input
    cfg = CompressConfig.from_dict(p.compress)
    sae = load_sae(Path(inp.sae).parent)
    result = compress(sae, load_array(inp.latents, "freq"), cfg)
    meta = {"compressed_from": p.sae, "fraction": cfg.fraction}
    result.sliced.sae.save(Path(snakemake.output.cfg).parent, metadata={"saeflow_compressed": meta})
    write_json(
        snakemake.output.json,
        {
            "label": p.label,
            "sae": p.sae,
            "fraction": cfg.fraction,
            **result.record(),
            "provenance": provenance({"compress": p.compress, "sae": p.sae_spec}, inputs=[inp.latents]),
        },
    )


run_main(main)
