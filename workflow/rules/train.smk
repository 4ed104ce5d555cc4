# SAE training: one job per SAE in the registry (saeflow.registry.sae_specs), whatever model its activations come from.


rule train_sae:
    input:
        unpack(train_inputs),
    output:
        cfg=f"{RESULTS}/sae/{{sae}}/cfg.json",
        weights=f"{RESULTS}/sae/{{sae}}/sae_weights.safetensors",
        metrics=f"{RESULTS}/sae/{{sae}}/metrics.json",
    log:
        "logs/train_sae/{sae}.log",
    benchmark:
        "benchmarks/train_sae/{sae}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: training_threads
    resources:
        mem_mb=SIZES.mem_mb("train"),
        runtime=SIZES.runtime("train"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        sae=lambda w: sae_spec(w.sae),
        name=lambda w: w.sae,
        model=lambda w: sae_model_params(w.sae),
        device=config["device"],
        code=code("train_sae.py"),
    script:
        "../../scripts/train_sae.py"
