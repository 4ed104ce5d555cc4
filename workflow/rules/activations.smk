# Language model preparation and residual-stream extraction (saeflow.lm, saeflow.activations).


def extraction_params(textset):
    """Token budget and storage settings of one text set ("<corpus>.<split>"): held-out sets are small."""
    ex = config["extraction"]
    split = textset.split(".", 1)[1]
    own = [b for b in (budget(textset) for budget in TEXTSET_BUDGETS) if b is not None]
    return {
        "max_tokens": (own[0] if own else ex["heldout_tokens"] if split == "heldout" else ex["train_tokens"]),
        "batch_size": config["model"]["batch_size"],
        "shard_rows": ex["shard_rows"],
        "dtype": ex.get("dtype", "float16"),
    }


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
