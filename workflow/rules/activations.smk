# Language model preparation and residual-stream extraction (saeflow.models.causal_lm, saeflow.activations).


rule prepare_model:
    input:
        uri_inputs(config["model"]["source"]),
    output:
        marker=model_marker(),
    log:
        f"logs/prepare_model/{MODEL}.log",
    benchmark:
        f"benchmarks/prepare_model/{MODEL}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: 2
    resources:
        mem_mb=SIZES.mem_mb("model"),
        runtime=SIZES.runtime("model"),
    params:
        model=model_params(),
        source=resolve(config["model"]["source"]),
    script:
        "../../scripts/prepare_model.py"


rule extract_activations:
    input:
        texts=lambda w: texts(w.textset),
        model=model_marker(),
    output:
        manifest=f"{RESULTS}/activations/{{model}}/L{{layer}}/{{textset}}/manifest.json",
    log:
        "logs/extract_activations/{model}_L{layer}/{textset}.log",
    benchmark:
        "benchmarks/extract_activations/{model}_L{layer}/{textset}.tsv"
    wildcard_constraints:
        model=re.escape(MODEL),  # the run's causal LM; other models' studies write their own activation sets
    conda:
        "../../envs/saeflow.yaml"
    threads: lambda w: textset_threads(w.textset)
    resources:
        mem_mb=SIZES.mem_mb("extract"),
        runtime=SIZES.runtime("extract"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        model=lambda w: {**model_params(), "layer": int(w.layer)},
        extraction=lambda w: extraction_params(w.textset),
        device=config["device"],
        code=code("extract_activations.py"),
    script:
        "../../scripts/extract_activations.py"
