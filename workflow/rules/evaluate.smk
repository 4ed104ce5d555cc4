# Spliced evaluation: a shared cache per held-out set, model and layer (token batches, residual stream, clean and
# zero-ablation CE, KL terms: saeflow.evaluate.EvalCache), then one job per SAE over all its eval sets from those
# caches (EVALUATED_SETS: the LM and the SAE load once), split into the per-eval-set JSONs the tables read.
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
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        canonical=lambda w: canonical_sae(w.sae),
    script:
        "../../scripts/alias_sae.py"


rule alias_eval:
    input:
        json=lambda w: sae_evals(canonical_sae(w.sae)),
    output:
        json=sae_evals("{sae}"),
    log:
        "logs/alias_eval/{sae}.log",
    wildcard_constraints:
        sae=alias_pattern(),
    localrule: True
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
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
        unpack(sae_eval_inputs),
    output:
        json=sae_evals("{sae}"),
    log:
        "logs/evaluate_sae/{sae}.log",
    benchmark:
        "benchmarks/evaluate_sae/{sae}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: EVAL_THREADS
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval", units=lambda w: len(EVALUATED_SETS[w.sae])),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        sae=lambda w: w.sae,
        eval_sets=lambda w: EVALUATED_SETS[w.sae],
        saelens_eval_sets=lambda w: SAELENS_SETS[w.sae],
        model=lambda w: sae_model_params(w.sae),
        model_dir=model_dir_of,
        evaluation=config["evaluation"],
        device=config["device"],
        code=code("evaluate.py"),
    script:
        "../../scripts/evaluate.py"


rule split_eval:
    input:
        json=split_eval_input,
    output:
        json=eval_json("{sae}", "{eval_set}"),
    log:
        "logs/split_eval/{sae}/{eval_set}.log",
    localrule: True
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        code=code("split_eval.py"),
    script:
        "../../scripts/split_eval.py"
