# Text corpora: sources (asset files, local files, hub datasets) -> deduplicated train/heldout JSONL.


def corpus_params(name):
    """The corpus spec from config (a plain dict: a changed source or filter rebuilds the corpus)."""
    try:
        return dict(config["corpora"][name])
    except KeyError:
        known = ", ".join(sorted(config.get("corpora") or {})) or "none"
        raise ValueError(f"unknown corpus '{name}'; configured corpora: {known}")


def corpus_inputs(name):
    """Asset markers and local files the corpus reads (hub datasets add nothing)."""
    files = []
    for source in corpus_params(name)["sources"]:
        path = source["path"] if isinstance(source, dict) else source
        files.extend(f for f in uri_inputs(path) if f not in files)
    return files


def corpus_stats(corpus):
    return f"{RESULTS}/texts/{corpus}.stats.json"


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
        mem_mb=2000,
        runtime=30,
    params:
        spec=lambda w: corpus_params(w.corpus),
        seed=config["seed"],
        resources_dir=RESOURCES,
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/build_corpus.py"
