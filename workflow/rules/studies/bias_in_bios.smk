# Bias in Bios: sets -> per-token residuals (pooled) -> per-SAE pooled latents -> probes, SHIFT, SCR -> tables.
# The bias SSAE (GSAE finetuned on general text retrieved with the ambiguous bios as seeds) is an ordinary
# registry SAE (saeflow.studies.bias_in_bios.specs); its text set is made by bib_select below from the
# general-corpus embedding cache of the ssae study (embed_corpus), then extracted and trained by the core rules.
from saeflow.studies.bias_in_bios.specs import selected_textset
from saeflow.studies.bias_in_bios.workflow import BiasInBiosWorkflow
from saeflow.studies.ssae.workflow import SSAEWorkflow

BIB_W = BiasInBiosWorkflow(config, SAES, P)
BIB_CFG = BIB_W.cfg
BIB_SSAE = BIB_CFG.get("ssae") or {}
BIB_TAG = BIB_W.tag
BIB = BIB_W.dir
BIB_ACTS = BIB_W.acts
BIB_SAES = BIB_W.saes
bib_params = BIB_W.params
bib_set = BIB_W.set_jsonl
bib_pooled = BIB_W.pooled
bib_latents = BIB_W.latents
bib_label = BIB_W.label
bib_shift_inputs = BIB_W.shift_inputs
# the retrieval of the bias SSAE reads the ssae study's general-corpus embedding cache and embedder
BIB_RETRIEVAL = SSAEWorkflow(config, SAES, P)


wildcard_constraints:
    bset="ambiguous|test|oracle",


rule bib_sets:
    input:
        BIB_W.data_inputs(),
    output:
        ambiguous=bib_set("ambiguous"),
        test=bib_set("test"),
        oracle=bib_set("oracle"),
        stats=f"{BIB}/sets/stats.json",
    log:
        f"logs/bias_in_bios{BIB_TAG}/sets.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/sets.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("corpus"),
        runtime=SIZES.runtime("corpus"),
    params:
        bib=bib_params(),
        seed=config["seed"],
        code=code("bib_sets.py"),
    script:
        "../../../scripts/bib_sets.py"


rule bib_activations:
    input:
        texts=bib_set("{bset}"),
        model=model_marker(),
    output:
        manifest=f"{BIB_ACTS}/{{bset}}/manifest.json",
        pooled=bib_pooled("{bset}"),
    log:
        f"logs/bias_in_bios{BIB_TAG}/activations/{MODEL}_L{LAYER}/{{bset}}.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/activations/{MODEL}_L{LAYER}/{{bset}}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("extract"),
        runtime=SIZES.runtime("extract"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        model=model_params() | {"batch_size": config["model"]["batch_size"]},
        max_length=BIB_CFG["max_length"],
        shard_rows=config["extraction"]["shard_rows"],
        dtype=config["extraction"]["dtype"],
        device=config["device"],
        code=code("bib_activations.py"),
    script:
        "../../../scripts/bib_activations.py"


rule bib_latents:
    input:
        manifest=f"{BIB_ACTS}/{{bset}}/manifest.json",
        sae=lambda w: f"{sae_dir(w.sae)}/cfg.json",
        weights=lambda w: sae_weights(w.sae),
    output:
        latents=bib_latents("{sae}", "{bset}"),
    log:
        f"logs/bias_in_bios{BIB_TAG}/latents/{{sae}}/{{bset}}.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/latents/{{sae}}/{{bset}}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        sae=lambda w: sae_spec(w.sae),
        device=config["device"],
        code=code("bib_latents.py"),
    script:
        "../../../scripts/bib_latents.py"


rule bib_baseline:
    input:
        **{name: bib_set(name) for name in ("ambiguous", "test", "oracle")},
        **{f"{name}_x": bib_pooled(name) for name in ("ambiguous", "test", "oracle")},
    output:
        json=f"{BIB}/baseline.json",
    log:
        f"logs/bias_in_bios{BIB_TAG}/baseline.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/baseline.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        bib=bib_params(),
        seed=config["seed"],
        code=code("bib_baseline.py"),
    script:
        "../../../scripts/bib_baseline.py"


rule bib_shift:
    input:
        unpack(bib_shift_inputs),
    output:
        json=f"{BIB}/shift/{{sae}}.json",
    log:
        f"logs/bias_in_bios{BIB_TAG}/shift/{{sae}}.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/shift/{{sae}}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        bib=bib_params(),
        label=lambda w: bib_label(w.sae),
        sae=lambda w: w.sae,
        sae_spec=lambda w: sae_spec(w.sae),
        seed=config["seed"],
        code=code("bib_shift.py"),
    script:
        "../../../scripts/bib_shift.py"


rule bib_tables:
    input:
        baseline=f"{BIB}/baseline.json",
        stats=f"{BIB}/sets/stats.json",
        shifts=BIB_W.shift_jsons(),
    output:
        csv=report(
            f"{RESULTS}/tables/bias_in_bios{BIB_TAG}.csv",
            caption="../../report/studies/bias_in_bios.rst",
            category="Tables",
            subcategory="Bias in Bios",
        ),
        md=f"{RESULTS}/tables/bias_in_bios{BIB_TAG}.md",
        scr=report(
            f"{RESULTS}/tables/scr{BIB_TAG}.csv",
            caption="../../report/studies/scr.rst",
            category="Tables",
            subcategory="Bias in Bios",
        ),
    log:
        f"logs/bias_in_bios{BIB_TAG}/tables.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/tables.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        bib=bib_params(),
        saes=BIB_SAES,
        model=model_params(),
        code=code("bib_tables.py"),
    script:
        "../../../scripts/bib_tables.py"


rule bib_select:
    input:
        seeds=bib_set("ambiguous"),
        general=texts(f"{BIB_RETRIEVAL.general}.train"),
        general_faiss=f"{BIB_RETRIEVAL.embedding_cache(BIB_RETRIEVAL.general)}.faiss",
        general_json=f"{BIB_RETRIEVAL.embedding_cache(BIB_RETRIEVAL.general)}.json",
        model=model_marker(),
        embedder=uri_inputs(BIB_RETRIEVAL.embedder["source"]),
    output:
        texts=texts(selected_textset(config)),
        json=f"{BIB}/selection.json",
    log:
        f"logs/bias_in_bios{BIB_TAG}/select.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/select.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        budget_tokens=BIB_SSAE["budget_tokens"],
        top_k=BIB_SSAE["top_k"],
        embedder_source=resolve(BIB_RETRIEVAL.embedder["source"]),
        max_length=config["model"]["max_length"],
        code=code("bib_select.py"),
    script:
        "../../../scripts/bib_select.py"


# Compressed SAEs (SSAE paper Table 1, "Comp." rows): a compared SAE sliced to its most frequently active
# latents on the ambiguous set's tokens (frequencies from bib_latents), then run through the same latents and
# SHIFT scripts as any SAE. A 1/8 slice is small, so its latents are taken on the CPU.
rule bib_compress:
    input:
        latents=bib_latents("{sae}", "ambiguous"),
        sae=lambda w: f"{sae_dir(w.sae)}/cfg.json",
        weights=lambda w: sae_weights(w.sae),
    output:
        cfg=BIB_W.compressed_file("{sae}", "sae/cfg.json"),
        weights=BIB_W.compressed_file("{sae}", "sae/sae_weights.safetensors"),
        json=BIB_W.compressed_file("{sae}", "kept.json"),
    log:
        f"logs/bias_in_bios{BIB_TAG}/compress/{{sae}}.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/compress/{{sae}}.tsv"
    wildcard_constraints:
        sae="[^/]+",
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        compress=BIB_W.compress_params(),
        label=lambda w: BIB_W.compressed_label(w.sae),
        sae=lambda w: w.sae,
        sae_spec=lambda w: sae_spec(w.sae),
        code=code("bib_compress.py"),
    script:
        "../../../scripts/bib_compress.py"


rule bib_compressed_latents:
    input:
        manifest=f"{BIB_ACTS}/{{bset}}/manifest.json",
        sae=BIB_W.compressed_file("{sae}", "sae/cfg.json"),
        weights=BIB_W.compressed_file("{sae}", "sae/sae_weights.safetensors"),
    output:
        latents=BIB_W.compressed_latents("{sae}", "{bset}"),
    log:
        f"logs/bias_in_bios{BIB_TAG}/compressed_latents/{{sae}}/{{bset}}.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/compressed_latents/{{sae}}/{{bset}}.tsv"
    wildcard_constraints:
        sae="[^/]+",
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        device="cpu",
        code=code("bib_latents.py"),
    script:
        "../../../scripts/bib_latents.py"


rule bib_compressed_shift:
    input:
        unpack(BIB_W.compressed_shift_inputs),
    output:
        json=BIB_W.compressed_file("{sae}", "shift.json"),
    log:
        f"logs/bias_in_bios{BIB_TAG}/compressed_shift/{{sae}}.log",
    benchmark:
        f"benchmarks/bias_in_bios{BIB_TAG}/compressed_shift/{{sae}}.tsv"
    wildcard_constraints:
        sae="[^/]+",
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        bib=bib_params(),
        label=lambda w: BIB_W.compressed_label(w.sae),
        sae=lambda w: w.sae,
        sae_spec=lambda w: sae_spec(w.sae) | {"compress": BIB_W.compress_params()},
        seed=config["seed"],
        code=code("bib_shift.py"),
    script:
        "../../../scripts/bib_shift.py"
