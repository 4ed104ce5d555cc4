"""Snakemake adapter: SHIFT (± retrain), random ablation and the SCR curve with one SAE."""

from safetensors.torch import load_file

from saeflow.io import read_json, write_json
from saeflow.runtime import provenance, redirect_to, run_main
from saeflow.studies.bias_in_bios.debias import shift_study
from saeflow.studies.bias_in_bios.study import labelled, load_array, read_set, shift_config

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p, inp = snakemake.params, snakemake.input
    cfg = shift_config(p.bib, p.seed)
    sets = {
        name: labelled(read_set(inp[name]), load_array(inp[f"{name}_x"], "x"))
        for name in ("ambiguous", "test", "oracle")
    }
    f = {name: load_array(inp[f"{name}_f"], "f") for name in ("ambiguous", "test", "oracle")}
    W_dec = load_file(inp.weights)["W_dec"].double().numpy()
    base = {r["method"]: r for r in read_json(inp.baseline)["rows"]}
    result = shift_study(
        p.label,
        sets["ambiguous"],
        sets["test"],
        sets["oracle"],
        f["ambiguous"],
        f["test"],
        f["oracle"],
        W_dec,
        base,
        cfg,
    )
    write_json(
        snakemake.output.json,
        {
            "label": p.label,
            "sae": p.sae,
            "rows": result.rows,
            "scr": result.scr,
            "latents": result.latents,
            "n_candidates": result.n_candidates,
            "selection": cfg.selection,
            "gender_gap": result.gender_gap,
            "attributions": result.attributions,
            "ig_steps": cfg.ig_steps,
            "provenance": provenance({"bias_in_bios": p.bib, "sae": p.sae_spec}, seed=cfg.seed),
        },
    )


run_main(main)
