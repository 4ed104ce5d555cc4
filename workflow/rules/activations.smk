# Language model preparation and residual-stream extraction (saeflow.lm, saeflow.activations).


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
        mem_mb=6000,
        runtime=30,
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
        manifest=acts_manifest("{textset}"),
    log:
        f"logs/extract_activations/{MODEL}_L{LAYER}/{{textset}}.log",
    benchmark:
        f"benchmarks/extract_activations/{MODEL}_L{LAYER}/{{textset}}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: MAX_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=config["gpu"],
    params:
        model=model_params(),
        extraction=lambda w: extraction_params(w.textset),
        device=config["device"],
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/extract_activations.py"
