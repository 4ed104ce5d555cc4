# Protein-LM SAEs (saeflow.studies.protein): chains split train/val/test -> residue activations of the study's own
# model (UniRep or ESM) at results/activations/<model>/L<layer>/gor4.<split>/ -> the core train_sae rule trains
# prot-topk<k> / prot-relu -> per unit set (trained SAEs, raw neurons, random SAE) fidelity and concepts ->
# steering trials and controls -> tables and figures.
from saeflow.studies.protein.workflow import ProteinWorkflow

PROT_W = ProteinWorkflow(config, SAES, P)


rule protein_prepare:
    input:
        PROT_W.data_inputs(),
    output:
        train=PROT_W.split_records("train"),
        val=PROT_W.split_records("val"),
        test=PROT_W.split_records("test"),
    log:
        "logs/protein/prepare.log",
    benchmark:
        "benchmarks/protein/prepare.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("model"),
        runtime=SIZES.runtime("model"),
    params:
        data=PROT_W.data,
        source=PROT_W.data_source(),
        code=code("protein_prepare.py"),
    script:
        "../../../scripts/protein_prepare.py"


rule protein_extract:
    input:
        records=lambda w: PROT_W.split_records(w.split),
        model=PROT_W.model_inputs(),
    output:
        manifest=PROT_W.acts_manifest("{split}"),
        records=PROT_W.stored_records("{split}"),
    log:
        "logs/protein/extract_{split}.log",
    benchmark:
        "benchmarks/protein/extract_{split}.tsv"
    wildcard_constraints:
        split="train|val|test",
    conda:
        "../../../envs/saeflow.yaml"
    # one thread: the recurrent model's per-residue steps are small ops that two threads slow down on a busy CPU
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("extract"),
        runtime=SIZES.runtime("extract"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        model=PROT_W.model,
        source=PROT_W.model_source(),
        extraction=lambda w: PROT_W.extraction(w.split),
        device=config["device"],
        code=code("protein_extract.py"),
    script:
        "../../../scripts/protein_extract.py"


rule protein_analyse:
    input:
        unpack(PROT_W.unit_inputs),
    output:
        summary=PROT_W.unit_file("{unit}", "summary.json"),
        concepts=PROT_W.unit_file("{unit}", "concepts.csv"),
        best=PROT_W.unit_file("{unit}", "best_concepts.csv"),
        arrays=PROT_W.unit_file("{unit}", "arrays.npz"),
    log:
        "logs/protein/analyse_{unit}.log",
    benchmark:
        "benchmarks/protein/analyse_{unit}.tsv"
    wildcard_constraints:
        unit=PROT_W.unit_regex,
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        kind=lambda w: PROT_W.unit_kind(w.unit),
        sae_dir=lambda w: PROT_W.unit_sae(w.unit),
        model=PROT_W.model,
        source=PROT_W.model_source(),
        concepts=PROT_W.concepts,
        fidelity=PROT_W.fidelity,
        seed=config["seed"],
        device=config["device"],
        code=code("protein_analyse.py"),
    script:
        "../../../scripts/protein_analyse.py"


rule protein_oracle:
    input:
        train=PROT_W.stored_records("train"),
        val=PROT_W.stored_records("val"),
    output:
        oracle=PROT_W.oracle(),
    log:
        "logs/protein/oracle.log",
    benchmark:
        "benchmarks/protein/oracle.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        seed=config["seed"],
        code=code("protein_oracle.py"),
    script:
        "../../../scripts/protein_oracle.py"


rule protein_steer:
    input:
        unpack(PROT_W.steer_inputs),
    output:
        csv=PROT_W.unit_file("{unit}", "steering.csv"),
    log:
        "logs/protein/steer_{unit}.log",
    benchmark:
        "benchmarks/protein/steer_{unit}.tsv"
    wildcard_constraints:
        unit=PROT_W.steer_regex,
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        sae=lambda w: w.unit,
        model=PROT_W.model,
        source=PROT_W.model_source(),
        steering=PROT_W.steering,
        seed=config["seed"],
        device=config["device"],
        code=code("protein_steer.py"),
    script:
        "../../../scripts/protein_steer.py"


rule protein_steer_controls:
    input:
        unpack(PROT_W.controls_inputs),
    output:
        csv=PROT_W.controls_csv(),
    log:
        "logs/protein/steer_controls.log",
    benchmark:
        "benchmarks/protein/steer_controls.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        sae="",
        model=PROT_W.model,
        source=PROT_W.model_source(),
        steering=PROT_W.steering,
        seed=config["seed"],
        device=config["device"],
        code=code("protein_steer.py"),
    script:
        "../../../scripts/protein_steer.py"


rule protein_tables:
    input:
        unpack(PROT_W.table_inputs),
    output:
        fidelity=report(
            f"{RESULTS}/tables/protein_fidelity.csv",
            caption="../../report/studies/protein.rst",
            category="Tables",
            subcategory="Protein",
        ),
        fidelity_md=f"{RESULTS}/tables/protein_fidelity.md",
        concepts=report(
            f"{RESULTS}/tables/protein_concepts.csv",
            caption="../../report/studies/protein.rst",
            category="Tables",
            subcategory="Protein",
        ),
        concepts_md=f"{RESULTS}/tables/protein_concepts.md",
        fig_fidelity=report(
            f"{RESULTS}/figures/protein_fidelity_l0.png",
            caption="../../report/studies/protein.rst",
            category="Figures",
            subcategory="Protein",
        ),
        fig_concepts=report(
            f"{RESULTS}/figures/protein_concepts_f1.png",
            caption="../../report/studies/protein.rst",
            category="Figures",
            subcategory="Protein",
        ),
    log:
        "logs/tables/protein.log",
    benchmark:
        "benchmarks/tables/protein.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        entries=PROT_W.entries(),
        code=code("protein_tables.py"),
    script:
        "../../../scripts/protein_tables.py"


rule protein_steering_table:
    input:
        unpack(PROT_W.steering_table_inputs),
    output:
        steering=report(
            f"{RESULTS}/tables/protein_steering.csv",
            caption="../../report/studies/protein.rst",
            category="Tables",
            subcategory="Protein",
        ),
        steering_md=f"{RESULTS}/tables/protein_steering.md",
        fig_steering=report(
            f"{RESULTS}/figures/protein_steering.png",
            caption="../../report/studies/protein.rst",
            category="Figures",
            subcategory="Protein",
        ),
    log:
        "logs/tables/protein_steering.log",
    benchmark:
        "benchmarks/tables/protein_steering.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        entries=PROT_W.entries(),
        code=code("protein_tables.py"),
    script:
        "../../../scripts/protein_tables.py"
