# Architecture comparison at matched L0 (saeflow.studies.architectures). The architecture SAEs (arch-<name>) are
# ordinary registry SAEs: train_sae trains them and evaluate_sae evaluates them; analyze_sae adds decoder geometry
# and first-letter absorption (held-out text, and SAEBench's ICL protocol on architectures_letter_set's data).
# ReLU + L1 (arch-relu) steers its L1 coefficient to the reference's L0 while it trains (saeflow.sae.relu).
from saeflow.studies.architectures.workflow import ArchitecturesWorkflow

ARCH_W = ArchitecturesWorkflow(config, SAES, P)
ARCH_CFG = ARCH_W.cfg
analysis_json = ARCH_W.analysis_json
architecture_inputs = ARCH_W.inputs


# SAEBench's first-letter absorption data (saeflow.absorption_icl): ICL-prompt residuals of a sampled vocabulary at one
# layer and the letter probes on them, shared by every SAE of that layer.
rule architectures_letter_set:
    input:
        model=model_marker(),
    output:
        letters=ARCH_W.letter_set("{layer}"),
    log:
        "logs/architectures/letter_set/L{layer}.log",
    benchmark:
        "benchmarks/architectures/letter_set/L{layer}.tsv"
    wildcard_constraints:
        layer=r"\d+",
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        settings=ARCH_W.absorption_icl_settings(),
        dtype=config["model"]["dtype"],
        device=config["device"],
        code=code("architectures_letter_set.py"),
    script:
        "../../../scripts/architectures_letter_set.py"


rule analyze_sae:
    input:
        sae=lambda w: f"{sae_dir(w.sae)}/cfg.json",
        weights=lambda w: sae_weights(w.sae),
        acts=acts_manifest(f"{ARCH_CFG['analysis']['eval_set']}.heldout"),
        model=model_marker(),
        letters=lambda w: ARCH_W.sae_letter_set(w.sae),
    output:
        json=analysis_json("{sae}"),
    log:
        "logs/architectures/analyze_sae/{sae}.log",
    benchmark:
        "benchmarks/architectures/analyze_sae/{sae}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        sae=lambda w: w.sae,
        analysis=ARCH_CFG["analysis"],
        code=code("analyze_sae.py"),
    script:
        "../../../scripts/analyze_sae.py"


ARCH_COLUMNS = sae_columns_of(ARCH_W.saes.values())


rule architectures_table:
    input:
        unpack(architecture_inputs),
        columns=sorted({f for files in ARCH_COLUMNS.values() for f in files}),
    output:
        csv=report(
            f"{RESULTS}/tables/architectures.csv",
            caption="../../report/studies/architectures.rst",
            category="Tables",
            subcategory="Architectures",
        ),
        md=f"{RESULTS}/tables/architectures.md",
        figure=report(
            f"{RESULTS}/figures/decoder_cos_hist.png",
            caption="../../report/studies/decoder_cos_hist.rst",
            category="Figures",
            subcategory="Architectures",
        ),
    log:
        "logs/tables/architectures.log",
    benchmark:
        "benchmarks/tables/architectures.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        entries=ARCH_W.entries(),
        columns=ARCH_COLUMNS,
        distinct_threshold=ARCH_CFG["analysis"]["distinct_threshold"],
        code=code("architectures_table.py"),
    script:
        "../../../scripts/architectures_table.py"
