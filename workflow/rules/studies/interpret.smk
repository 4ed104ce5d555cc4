# Latent interpretation (saeflow.studies.interpret): the study's held-out text set (interpret.contexts, extracted by
# the core extract_activations rule), then per SAE top activations, explanations + scores beside the shuffled
# control and a dashboard (interpret_sae), the cross-SAE tables (interpret_tables) and steering (interpret_steering).
from saeflow.studies.interpret.workflow import InterpretWorkflow

INTERP_W = InterpretWorkflow(config, SAES, P)
INTERP_CFG = INTERP_W.cfg
INTERP = INTERP_W.dir


rule interpret_texts:
    input:
        heldout=INTERP_W.heldout_texts(),
    output:
        texts=texts(INTERP_W.textset),
    log:
        "logs/interpret/texts.log",
    benchmark:
        "benchmarks/interpret/texts.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        code=code("interpret_texts.py"),
    script:
        "../../../scripts/interpret_texts.py"


rule interpret_sae:
    input:
        unpack(INTERP_W.sae_inputs),
        acts=INTERP_W.acts,
        model=model_marker(),
        embedder=uri_inputs(INTERP_W.embedder),
    output:
        scores=f"{INTERP}/{{sae}}/autointerp.csv",
        latents=f"{INTERP}/{{sae}}/latents/latents.json",
        tensors=f"{INTERP}/{{sae}}/latents/latents.safetensors",
        dashboard=f"{INTERP}/{{sae}}/dashboard/index.html",
        columns=f"{INTERP}/{{sae}}/columns.json",
    log:
        "logs/interpret/sae/{sae}.log",
    benchmark:
        "benchmarks/interpret/sae/{sae}.tsv"
    wildcard_constraints:
        sae=INTERP_W.sae_regex,
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
    params:
        sae=lambda w: w.sae,
        settings=INTERP_W.params(),
        embedder=resolve(INTERP_W.embedder),
        code=code("interpret_sae.py"),
    script:
        "../../../scripts/interpret_sae.py"


rule interpret_tables:
    input:
        unpack(INTERP_W.table_inputs),
    output:
        csv=report(
            f"{RESULTS}/tables/autointerp.csv",
            caption="../../report/studies/interpret.rst",
            category="Tables",
            subcategory="Interpretation",
        ),
        summary_csv=f"{RESULTS}/tables/autointerp_summary.csv",
        summary_md=f"{RESULTS}/tables/autointerp_summary.md",
        index=INTERP_W.site_index(),
    log:
        "logs/interpret/tables.log",
    benchmark:
        "benchmarks/interpret/tables.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        saes=INTERP_W.saes,
        threshold=INTERP_CFG["threshold"],
        n_latents=INTERP_CFG["n_latents"],
        code=code("interpret_tables.py"),
    script:
        "../../../scripts/interpret_tables.py"


rule interpret_steering:
    input:
        unpack(INTERP_W.steering_inputs),
        acts=INTERP_W.acts,
        model=model_marker(),
        embedder=uri_inputs(INTERP_W.embedder),
    output:
        csv=report(
            f"{RESULTS}/tables/steering.csv",
            caption="../../report/studies/interpret_steering.rst",
            category="Tables",
            subcategory="Interpretation",
        ),
        md=f"{RESULTS}/tables/steering.md",
        generations=f"{INTERP}/steering_generations.csv",
        figure=report(
            f"{RESULTS}/figures/steering_dose_response.png",
            caption="../../report/studies/interpret_steering.rst",
            category="Figures",
            subcategory="Interpretation",
        ),
    log:
        "logs/interpret/steering.log",
    benchmark:
        "benchmarks/interpret/steering.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: JOB_THREADS
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
    params:
        sae=INTERP_W.steer_sae,
        layer=lambda w: int(sae_spec(INTERP_W.steer_sae)["layer"]),
        steering=INTERP_CFG["steering"],
        seed=INTERP_CFG["seed"],
        embedder=resolve(INTERP_W.embedder),
        code=code("interpret_steering.py"),
    script:
        "../../../scripts/interpret_steering.py"
