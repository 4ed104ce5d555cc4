# Spliced evaluation: a clean/zero-ablation baseline per held-out set, then every SAE on every eval set.


rule evaluate_baseline:
    input:
        texts=lambda w: texts(f"{w.eval_set}.heldout"),
        model=model_marker(),
    output:
        json=baseline_json("{eval_set}"),
    log:
        f"logs/evaluate_baseline/{MODEL}_L{LAYER}/{{eval_set}}.log",
    benchmark:
        f"benchmarks/evaluate_baseline/{MODEL}_L{LAYER}/{{eval_set}}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: EVAL_THREADS
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=config["gpu"],
    params:
        sae=None,
        eval_set=lambda w: w.eval_set,
        model=model_params(),
        model_dir=model_dir_of,
        evaluation=config["evaluation"],
        device=config["device"],
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/evaluate.py"


rule evaluate_sae:
    input:
        texts=lambda w: texts(f"{w.eval_set}.heldout"),
        model=model_marker(),
        baseline=lambda w: baseline_json(w.eval_set),
        sae=lambda w: f"{sae_dir(w.sae)}/cfg.json",
        weights=lambda w: sae_weights(w.sae),
    output:
        json=eval_json("{sae}", "{eval_set}"),
    log:
        "logs/evaluate_sae/{sae}/{eval_set}.log",
    benchmark:
        "benchmarks/evaluate_sae/{sae}/{eval_set}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: EVAL_THREADS
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=config["gpu"],
    params:
        sae=lambda w: w.sae,
        eval_set=lambda w: w.eval_set,
        model=model_params(),
        model_dir=model_dir_of,
        evaluation=config["evaluation"],
        device=config["device"],
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/evaluate.py"
