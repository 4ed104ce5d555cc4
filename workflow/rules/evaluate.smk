# Spliced evaluation: a clean/zero-ablation baseline per held-out set, then every SAE on every eval set.


rule evaluate_baseline:
    input:
        texts=lambda w: texts(f"{w.eval_set}.heldout"),
        model=model_marker(),
    output:
        json=f"{RESULTS}/eval/_baseline/{MODEL}_L{{layer}}/{{eval_set}}.json",
    log:
        f"logs/evaluate_baseline/{MODEL}_L{{layer}}/{{eval_set}}.log",
    benchmark:
        f"benchmarks/evaluate_baseline/{MODEL}_L{{layer}}/{{eval_set}}.tsv"
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
        model=lambda w: {**model_params(), "layer": int(w.layer)},
        model_dir=model_dir_of,
        evaluation=config["evaluation"],
        device=config["device"],
        code=code("evaluate.py"),
    script:
        "../../scripts/evaluate.py"


rule evaluate_sae:
    input:
        texts=lambda w: texts(f"{w.eval_set}.heldout"),
        model=model_marker(),
        baseline=lambda w: baseline_json(w.eval_set, MODEL, sae_spec(w.sae)["layer"]),
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
        model=lambda w: sae_model_params(w.sae),
        model_dir=model_dir_of,
        evaluation=config["evaluation"],
        device=config["device"],
        code=code("evaluate.py"),
    script:
        "../../scripts/evaluate.py"
