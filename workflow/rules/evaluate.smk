# Spliced evaluation: a shared cache per held-out set, model and layer (token batches, residual stream, clean and
# zero-ablation CE, KL terms: saeflow.evaluate.EvalCache), then every SAE on every eval set from that cache.
# Alias SAEs (saeflow.registry.canonical_names) are not trained or evaluated again: they copy their canonical SAE.


ruleorder: alias_sae > train_sae
ruleorder: alias_eval > evaluate_sae


rule alias_sae:
    input:
        cfg=lambda w: P.sae_cfg(canonical_sae(w.sae)),
        weights=lambda w: sae_weights(canonical_sae(w.sae)),
        metrics=lambda w: f"{sae_dir(canonical_sae(w.sae))}/metrics.json",
    output:
        cfg=f"{RESULTS}/sae/{{sae}}/cfg.json",
        weights=f"{RESULTS}/sae/{{sae}}/sae_weights.safetensors",
        metrics=f"{RESULTS}/sae/{{sae}}/metrics.json",
    log:
        "logs/alias_sae/{sae}.log",
    wildcard_constraints:
        sae=alias_pattern(),
    localrule: True
    conda:
        "../../envs/saeflow.yaml"
    params:
        canonical=lambda w: canonical_sae(w.sae),
    script:
        "../../scripts/alias_sae.py"


rule alias_eval:
    input:
        json=lambda w: eval_json(canonical_sae(w.sae), w.eval_set),
    output:
        json=eval_json("{sae}", "{eval_set}"),
    log:
        "logs/alias_eval/{sae}/{eval_set}.log",
    wildcard_constraints:
        sae=alias_pattern(),
    localrule: True
    conda:
        "../../envs/saeflow.yaml"
    params:
        canonical=lambda w: canonical_sae(w.sae),
    script:
        "../../scripts/alias_sae.py"


rule evaluate_baseline:
    input:
        texts=lambda w: texts(f"{w.eval_set}.heldout"),
        model=model_marker(),
    output:
        json=f"{RESULTS}/eval/_baseline/{MODEL}_L{{layer}}/{{eval_set}}.json",
        cache=f"{RESULTS}/eval/_baseline/{MODEL}_L{{layer}}/{{eval_set}}.safetensors",
    log:
        f"logs/evaluate_baseline/{MODEL}_L{{layer}}/{{eval_set}}.log",
    benchmark:
        f"benchmarks/evaluate_baseline/{MODEL}_L{{layer}}/{{eval_set}}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: EVAL_THREADS
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
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
        model=model_marker(),
        baseline=lambda w: baseline_json(w.eval_set, MODEL, sae_spec(w.sae)["layer"]),
        cache=lambda w: eval_cache(w.eval_set, MODEL, sae_spec(w.sae)["layer"]),
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
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
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
