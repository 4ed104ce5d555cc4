# Text corpora: sources (asset files, local files, hub datasets) -> deduplicated train/heldout JSONL.


rule build_corpus:
    input:
        lambda w: corpus_inputs(w.corpus),
    output:
        train=texts("{corpus}.train"),
        heldout=texts("{corpus}.heldout"),
        stats=corpus_stats("{corpus}"),
    log:
        "logs/build_corpus/{corpus}.log",
    benchmark:
        "benchmarks/build_corpus/{corpus}.tsv"
    wildcard_constraints:
        corpus=r"[A-Za-z0-9_\-]+",
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("corpus"),
        runtime=SIZES.runtime("corpus"),
    params:
        spec=lambda w: corpus_params(w.corpus),
        seed=config["seed"],
        resources_dir=RESOURCES,
        code=code("build_corpus.py"),
    script:
        "../../scripts/build_corpus.py"
