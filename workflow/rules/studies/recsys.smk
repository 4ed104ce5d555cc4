# RecSAE (saeflow.studies.recsys): SASRec trained on RecBole atomic files, its scoring state at every position
# written as the SAE training set (the core train_sae rule trains the recsys-topk-k<k> SAEs on it), then the
# model, SAE, concept-dictionary and ablation tables. Everything here runs on the CPU (a small model).
from saeflow.studies.recsys.workflow import RecsysWorkflow

RECSYS_W = RecsysWorkflow(config, SAES, P)
RECSYS_MODEL = RECSYS_W.model_files()


wildcard_constraints:
    units=RECSYS_W.units_pattern(),


rule recsys_train_model:
    input:
        RECSYS_W.data_inputs(),
    output:
        weights=RECSYS_MODEL["weights"],
        config=RECSYS_MODEL["config"],
        training=RECSYS_MODEL["training"],
    log:
        "logs/recsys/train_model.log",
    benchmark:
        "benchmarks/recsys/train_model.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("train"),
        runtime=SIZES.runtime("train"),
    params:
        data=RECSYS_W.data_params(),
        model=RECSYS_W.section["model"],
        train=RECSYS_W.section["train"],
        seed=config["seed"],
        code=code("recsys_train.py"),
    script:
        "../../../scripts/recsys_train.py"


rule recsys_activations:
    input:
        RECSYS_W.data_inputs(),
        **RECSYS_MODEL,
    output:
        manifest=RECSYS_W.acts_manifest(),
    log:
        "logs/recsys/activations.log",
    benchmark:
        "benchmarks/recsys/activations.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("extract"),
        runtime=SIZES.runtime("extract"),
    params:
        data=RECSYS_W.data_params(),
        code=code("recsys_activations.py"),
    script:
        "../../../scripts/recsys_activations.py"


rule recsys_model_table:
    input:
        RECSYS_W.data_inputs(),
        **RECSYS_MODEL,
    output:
        csv=report(
            RECSYS_W.table("model"),
            caption="../../report/studies/recsys_model.rst",
            category="Tables",
            subcategory="RecSAE",
        ),
        md=RECSYS_W.table("model", "md"),
    log:
        "logs/recsys/model_table.log",
    benchmark:
        "benchmarks/recsys/model_table.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        data=RECSYS_W.data_params(),
        negatives=RECSYS_W.section["ranking"]["negatives"],
        seed=config["seed"],
        code=code("recsys_model_table.py"),
    script:
        "../../../scripts/recsys_model_table.py"


rule recsys_sae_table:
    input:
        RECSYS_W.data_inputs(),
        RECSYS_W.sae_files(),
        **RECSYS_MODEL,
        acts=RECSYS_W.acts_manifest(),
    output:
        csv=report(
            RECSYS_W.table("sae"),
            caption="../../report/studies/recsys_sae.rst",
            category="Tables",
            subcategory="RecSAE",
        ),
        md=RECSYS_W.table("sae", "md"),
    log:
        "logs/recsys/sae_table.log",
    benchmark:
        "benchmarks/recsys/sae_table.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        data=RECSYS_W.data_params(),
        saes=RECSYS_W.saes,
        untrained=RECSYS_W.untrained(),
        code=code("recsys_sae_table.py"),
    script:
        "../../../scripts/recsys_sae_table.py"


rule recsys_dictionary:
    input:
        RECSYS_W.data_inputs(),
        RECSYS_W.dictionary_inputs,
        **RECSYS_MODEL,
        acts=RECSYS_W.acts_manifest(),
    output:
        csv=RECSYS_W.dictionary("{units}"),
    log:
        "logs/recsys/dictionary/{units}.log",
    benchmark:
        "benchmarks/recsys/dictionary/{units}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
    params:
        data=RECSYS_W.data_params(),
        untrained=RECSYS_W.untrained(),
        settings=RECSYS_W.section["dictionary"],
        seed=config["seed"],
        code=code("recsys_dictionary.py"),
    script:
        "../../../scripts/recsys_dictionary.py"


rule recsys_concepts:
    input:
        RECSYS_W.dictionaries(),
    output:
        csv=report(
            RECSYS_W.table("concepts"),
            caption="../../report/studies/recsys_concepts.rst",
            category="Tables",
            subcategory="RecSAE",
        ),
        md=RECSYS_W.table("concepts", "md"),
        hist=report(
            RECSYS_W.figure("confidence_hist"),
            caption="../../report/studies/recsys_confidence_hist.rst",
            category="Figures",
            subcategory="RecSAE",
        ),
    log:
        "logs/recsys/concepts.log",
    benchmark:
        "benchmarks/recsys/concepts.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        units=RECSYS_W.unit_kinds(),
        code=code("recsys_concepts.py"),
    script:
        "../../../scripts/recsys_concepts.py"


rule recsys_ablation:
    input:
        RECSYS_W.data_inputs(),
        RECSYS_W.sae_files([RECSYS_W.reference]),
        **RECSYS_MODEL,
        sae_dictionary=RECSYS_W.dictionary(RECSYS_W.reference),
        neuron_dictionary=RECSYS_W.dictionary("neurons"),
    output:
        csv=report(
            RECSYS_W.table("ablation"),
            caption="../../report/studies/recsys_ablation.rst",
            category="Tables",
            subcategory="RecSAE",
        ),
        md=RECSYS_W.table("ablation", "md"),
        edits=RECSYS_W.ablation_edits(),
        figure=report(
            RECSYS_W.figure("ablation"),
            caption="../../report/studies/recsys_ablation_figure.rst",
            category="Figures",
            subcategory="RecSAE",
        ),
    log:
        "logs/recsys/ablation.log",
    benchmark:
        "benchmarks/recsys/ablation.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        data=RECSYS_W.data_params(),
        settings=RECSYS_W.section["ablation"],
        seed=config["seed"],
        code=code("recsys_ablation.py"),
    script:
        "../../../scripts/recsys_ablation.py"
