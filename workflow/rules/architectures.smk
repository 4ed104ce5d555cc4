# Architecture comparison at matched L0 and boosted (residual) SAEs (saeflow.arch_specs, saeflow.boosting).
# The architecture SAEs (arch-<architecture>) and the full-finetune baselines (boost-ft-<subdomain>) are ordinary
# registry SAEs: train_sae trains them and evaluate_sae evaluates them. Residual SAEs (boost-<subdomain>) are too:
# train_sae waits for their frozen base (extra.base), and evaluate_sae evaluates a residual SAE boosted on its base.

if ARCH_SAES:

    TARGETS += [
        f"{RESULTS}/tables/architectures.csv",
        f"{RESULTS}/tables/architectures.md",
        f"{RESULTS}/figures/decoder_cos_hist.png",
    ]

if BOOST_SUBDOMAINS:

    TARGETS += [f"{RESULTS}/tables/boosting.csv", f"{RESULTS}/tables/boosting.md"]


rule analyze_sae:
    input:
        sae=lambda w: f"{sae_dir(w.sae)}/cfg.json",
        weights=lambda w: sae_weights(w.sae),
        acts=acts_manifest(f"{ARCH_CFG['analysis']['eval_set']}.heldout"),
        model=model_marker(),
    output:
        json=analysis_json("{sae}"),
    log:
        "logs/architectures/analyze_sae/{sae}.log",
    benchmark:
        "benchmarks/architectures/analyze_sae/{sae}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: MAX_THREADS
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        sae=lambda w: w.sae,
        analysis=ARCH_CFG["analysis"],
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/analyze_sae.py"


rule architectures_table:
    input:
        unpack(architecture_inputs),
    output:
        csv=report(
            f"{RESULTS}/tables/architectures.csv",
            caption="../report/architectures.rst",
            category="Tables",
            subcategory="Architectures",
        ),
        md=f"{RESULTS}/tables/architectures.md",
        figure=report(
            f"{RESULTS}/figures/decoder_cos_hist.png",
            caption="../report/decoder_cos_hist.rst",
            category="Figures",
            subcategory="Architectures",
        ),
    log:
        "logs/tables/architectures.log",
    benchmark:
        "benchmarks/tables/architectures.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entries=architecture_entries(),
        distinct_threshold=ARCH_CFG["analysis"]["distinct_threshold"],
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/architectures_table.py"


rule evaluate_boosted:
    input:
        texts=lambda w: texts(f"{w.eval_set}.heldout"),
        model=model_marker(),
        baseline=lambda w: baseline_json(w.eval_set),
        sae=lambda w: f"{sae_dir(boosting_base(config))}/cfg.json",
        weights=lambda w: sae_weights(boosting_base(config)),
        residuals=[f"{sae_dir(r)}/cfg.json" for r in RESIDUAL_SAES],
        residual_weights=[sae_weights(r) for r in RESIDUAL_SAES],
    output:
        json=stacked_eval_json("{eval_set}"),
    log:
        f"logs/boosting/evaluate_{STACKED}/{{eval_set}}.log",
    benchmark:
        f"benchmarks/boosting/evaluate_{STACKED}/{{eval_set}}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: EVAL_THREADS
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=config["gpu"],
    params:
        sae=STACKED,
        eval_set=lambda w: w.eval_set,
        model=model_params(),
        model_dir=model_dir_of,
        evaluation=config["evaluation"],
        device=config["device"],
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/evaluate.py"


rule boosting_table:
    input:
        boosting_inputs,
    output:
        csv=report(
            f"{RESULTS}/tables/boosting.csv",
            caption="../report/boosting.rst",
            category="Tables",
            subcategory="Boosting",
        ),
        md=f"{RESULTS}/tables/boosting.md",
    log:
        "logs/tables/boosting.log",
    benchmark:
        "benchmarks/tables/boosting.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entries=boosting_entries() if BOOST_SUBDOMAINS else {},
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/boosting_table.py"
