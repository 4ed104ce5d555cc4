"""Snakemake adapter: the L1-coefficient search of a ReLU SAE for a target L0
(saeflow.studies.architectures.l1_search); its JSON's l1_coefficient is what that SAE then trains with."""

from pathlib import Path

from saeflow.activations import ActivationStore
from saeflow.io import write_json
from saeflow.runtime import check_device, provenance, redirect_to, run_main, set_threads
from saeflow.studies.architectures.l1_search import L1SearchSettings, run_l1_search

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p = snakemake.params
    check_device(p.device, visible=True)
    store = ActivationStore(snakemake.input.acts)
    out = Path(snakemake.output.json)
    result = run_l1_search(
        p.sae,
        store,
        float(p.target_l0),
        L1SearchSettings.from_dict(p.search),
        out.parent / f".{out.stem}.probes",
        device=p.device,
    )
    for probe in result.probes:
        print(f"λ = {probe['l1_coefficient']:.4g}: L0 {probe['l0']:.2f}", flush=True)
    write_json(
        out,
        {
            **result.to_dict(),
            "provenance": provenance(
                {"sae": p.sae, "search": p.search}, seed=p.sae.get("seed"), inputs=[snakemake.input.acts]
            ),
        },
    )


run_main(main)
