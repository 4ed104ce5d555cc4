# Specialised SAEs (saeflow.studies.ssae): data selection per subdomain -> the selection's activations
# (extract_activations) -> GSAE finetuned with ERM / TERM per sparsity setting (train_sae; specs from
# saeflow.studies.ssae.specs) -> evaluate_sae on the subdomain and the general corpus -> tail-concept metrics ->
# results/tables/ssae.{csv,md} and results/figures/ssae_pareto_<subdomain>.png, tail_recall_<subdomain>.png.
from saeflow.studies.ssae.specs import (
    RETRIEVAL_METHODS,
    embed_documents_count,
    extraction_budget,
    tracin_settings,
)
from saeflow.studies.ssae.workflow import SSAEWorkflow

SSAE_W = SSAEWorkflow(config, SAES, P)
SSAE = SSAE_W.cfg
SSAE_SUBDOMAINS = SSAE_W.subdomains
SSAE_GENERAL = SSAE_W.general
SSAE_DIR = SSAE_W.dir
EMBEDDER = SSAE_W.embedder
CONCEPTS_SPLIT = SSAE_W.concepts_split
embedding_cache = SSAE_W.embedding_cache
embedder_source = SSAE_W.embedder_source
token_freq = SSAE_W.token_freq
select_inputs = SSAE_W.select_inputs
ssae_report_inputs = SSAE_W.report_inputs


wildcard_constraints:
    subdomain=r"[A-Za-z0-9_\-]+",
    method=r"[a-z0-9_]+",
    embedder=r"[A-Za-z0-9_\-]+",


rule embed_corpus:
    input:
        texts=texts(f"{{corpus}}.train"),
        embedder=uri_inputs(EMBEDDER["source"]),
    output:
        npy=f"{RESULTS}/retrieval/{{embedder}}/{{corpus}}.npy",
        index=f"{RESULTS}/retrieval/{{embedder}}/{{corpus}}.faiss",
        meta=f"{RESULTS}/retrieval/{{embedder}}/{{corpus}}.json",
    log:
        "logs/ssae/embed_corpus/{embedder}/{corpus}.log",
    benchmark:
        "benchmarks/ssae/embed_corpus/{embedder}/{corpus}.tsv"
    wildcard_constraints:
        corpus=r"[A-Za-z0-9_\-]+",
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("embed"),
        runtime=SIZES.runtime("embed"),
    params:
        n_documents=lambda w: embed_documents_count(config, w.corpus),
        source=lambda w: embedder_source(w.embedder),
        retrieval={k: v for k, v in SSAE["retrieval"].items() if k not in ("top_k", "embedder")},
        seed=config["seed"],
        code=code("embed_corpus.py"),
    script:
        "../../../scripts/embed_corpus.py"


rule select_texts:
    input:
        unpack(select_inputs),
    output:
        texts=texts(f"{{subdomain}}.{{kind}}-{{method}}"),
        json=f"{SSAE_DIR}/selection/{{subdomain}}.{{kind}}-{{method}}.json",
    log:
        "logs/ssae/select_texts/{subdomain}.{kind}-{method}.log",
    benchmark:
        "benchmarks/ssae/select_texts/{subdomain}.{kind}-{method}.tsv"
    wildcard_constraints:
        kind="sel|cand",  # a selection, or the candidates a TracIn selection re-ranks (budget × tracin.candidates)
        method="|".join(RETRIEVAL_METHODS),
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        method=lambda w: w.method,
        subdomain=lambda w: w.subdomain,
        budget_tokens=lambda w: extraction_budget(config, f"{w.subdomain}.{w.kind}-{w.method}"),
        seeds=SSAE["seeds"],
        queries=lambda w: (SSAE.get("queries") or {}).get(w.subdomain),
        pool=SSAE["pool"],
        top_k=SSAE["retrieval"]["top_k"],
        embedder_source=resolve(EMBEDDER["source"]),
        max_length=config["model"]["max_length"],
        seed=config["seed"],
        code=code("select_texts.py"),
    script:
        "../../../scripts/select_texts.py"


rule seed_texts:
    input:
        domain=texts(f"{{subdomain}}.train"),
    output:
        texts=texts(f"{{subdomain}}.seeds"),
    log:
        "logs/ssae/seed_texts/{subdomain}.log",
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        seeds=SSAE["seeds"],
        queries=lambda w: (SSAE.get("queries") or {}).get(w.subdomain),
        code=code("ssae_seed_texts.py"),
    script:
        "../../../scripts/ssae_seed_texts.py"


rule tracin_select:
    input:
        unpack(SSAE_W.tracin_inputs),
    output:
        texts=texts(f"{{subdomain}}.sel-{{base}}_tracin"),
        json=f"{SSAE_DIR}/selection/{{subdomain}}.sel-{{base}}_tracin.json",
    log:
        "logs/ssae/tracin_select/{subdomain}.sel-{base}_tracin.log",
    benchmark:
        "benchmarks/ssae/tracin_select/{subdomain}.sel-{base}_tracin.tsv"
    wildcard_constraints:
        base="dense|bm25",
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        method=lambda w: f"{w.base}_tracin",
        subdomain=lambda w: w.subdomain,
        budget_tokens=SSAE["budget_tokens"],
        seeds=SSAE["seeds"],
        pool=SSAE["pool"],
        tracin=tracin_settings(config),
        max_length=config["model"]["max_length"],
        code=code("ssae_tracin.py"),
    script:
        "../../../scripts/ssae_tracin.py"


rule concept_texts:
    input:
        texts(f"{{subdomain}}.heldout"),
    output:
        texts(f"{{subdomain}}.{CONCEPTS_SPLIT}"),
    log:
        "logs/ssae/concept_texts/{subdomain}.log",
    benchmark:
        "benchmarks/ssae/concept_texts/{subdomain}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        note="held-out documents, extracted with their own budget (ssae.concepts.tokens)",
    shell:
        "cp {input} {output} 2> {log}"


rule token_frequencies:
    input:
        texts=texts(f"{{corpus}}.train"),
        model=model_marker(),
    output:
        npy=f"{SSAE_DIR}/token_freq/{MODEL}/{{corpus}}.npy",
        json=f"{SSAE_DIR}/token_freq/{MODEL}/{{corpus}}.json",
    log:
        f"logs/ssae/token_frequencies/{MODEL}/{{corpus}}.log",
    benchmark:
        f"benchmarks/ssae/token_frequencies/{MODEL}/{{corpus}}.tsv"
    wildcard_constraints:
        corpus=r"[A-Za-z0-9_\-]+",
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        max_length=config["model"]["max_length"],
        max_documents=SSAE["concepts"]["frequency_documents"],
        code=code("token_frequencies.py"),
    script:
        "../../../scripts/token_frequencies.py"


rule concept_metrics:
    input:
        sae=lambda w: f"{sae_dir(w.sae)}/cfg.json",
        weights=lambda w: sae_weights(w.sae),
        acts=lambda w: acts_manifest(f"{w.subdomain}.{CONCEPTS_SPLIT}"),
        freq=token_freq(SSAE_GENERAL),
    output:
        json=f"{SSAE_DIR}/concepts/{{sae}}/{{subdomain}}.json",
    log:
        "logs/ssae/concept_metrics/{sae}/{subdomain}.log",
    benchmark:
        "benchmarks/ssae/concept_metrics/{sae}/{subdomain}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: lambda w: textset_threads(f"{w.subdomain}.{CONCEPTS_SPLIT}")
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        sae=lambda w: w.sae,
        subdomain=lambda w: w.subdomain,
        concepts={k: v for k, v in SSAE["concepts"].items() if k not in ("tokens", "frequency_documents")},
        device=config["device"],
        code=code("concept_metrics.py"),
    script:
        "../../../scripts/concept_metrics.py"


SSAE_COLUMNS = sae_columns_of(e["name"] for e in SSAE_W.report_entries())


rule ssae_report:
    input:
        ssae_report_inputs,
        columns=sorted({f for files in SSAE_COLUMNS.values() for f in files}),
    output:
        csv=report(
            f"{RESULTS}/tables/ssae.csv",
            caption="../../report/studies/ssae.rst",
            category="Tables",
            subcategory="Specialised SAEs",
        ),
        md=f"{RESULTS}/tables/ssae.md",
        bins=f"{RESULTS}/tables/ssae_bins.csv",
        retrieval_csv=f"{RESULTS}/tables/ssae_retrieval.csv",
        retrieval_md=f"{RESULTS}/tables/ssae_retrieval.md",
        pareto=report(
            expand(f"{RESULTS}/figures/ssae_pareto_{{s}}.png", s=SSAE_SUBDOMAINS),
            caption="../../report/studies/ssae_figures.rst",
            category="Figures",
            subcategory="Specialised SAEs",
        ),
        tail=report(
            expand(f"{RESULTS}/figures/tail_recall_{{s}}.png", s=SSAE_SUBDOMAINS),
            caption="../../report/studies/ssae_figures.rst",
            category="Figures",
            subcategory="Specialised SAEs",
        ),
    log:
        "logs/ssae/report.log",
    benchmark:
        "benchmarks/ssae/report.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        entries=SSAE_W.report_entries(),
        columns=SSAE_COLUMNS,
        selections=SSAE_W.selection_jsons(),
        subdomains=SSAE_SUBDOMAINS,
        figure_sparsity=SSAE["figure_sparsity"] or SAES[SSAE["base_sae"]].get(SSAE["sparsity_key"]),
        code=code("ssae_report.py"),
    script:
        "../../../scripts/ssae_report.py"
