"""Snakemake adapter: train one SAE from its resolved spec."""

from pathlib import Path

from saeflow.activations import ActivationStore
from saeflow.io import write_json
from saeflow.runtime import check_device, provenance, redirect_to, run_main, set_threads
from saeflow.sae import SAEConfig
from saeflow.tracking import Tracker
from saeflow.train import TrainConfig, train_sae

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    spec, p = snakemake.params.sae, snakemake.params
    check_device(p.device, visible=True)  # one line, before any work, when the GPU is not there
    store = ActivationStore(snakemake.input.acts)
    sae_cfg = SAEConfig.from_dict({**spec, "d_in": store.d_model})
    train_cfg = TrainConfig.from_dict(spec)
    tracker = Tracker(
        mode=snakemake.config["wandb_mode"],
        group=snakemake.config.get("experiment", "default"),
        name=p.name,
        config=spec,
        dir=str(Path(snakemake.log[0]).parent),
    )
    meta = {
        "model_name": p.model["name"],
        "hook_layer": p.model["layer"],
        "hook_name": f"model.layers.{p.model['layer']}",
        "saeflow_name": p.name,
    }
    result = train_sae(
        sae_cfg,
        train_cfg,
        store,
        Path(snakemake.output.cfg).parent,
        monitor=ActivationStore(snakemake.input.monitor) if hasattr(snakemake.input, "monitor") else None,
        init_from=Path(snakemake.input.parent).parent if hasattr(snakemake.input, "parent") else None,
        tracker=tracker,
        metadata=meta,
        device=p.device,
    )
    tracker.finish()
    write_json(
        snakemake.output.metrics,
        {
            **result.metrics,
            "provenance": provenance(
                {"sae": spec, "model": p.model}, seed=train_cfg.seed, inputs=[snakemake.input.acts]
            ),
        },
    )


run_main(main)
