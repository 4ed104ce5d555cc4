# Boosted (residual) SAEs (saeflow.studies.boosting): the residual SAEs (boost-<subdomain>) and the full-finetune
# baselines (boost-ft-<subdomain>) are ordinary registry SAEs; train_sae waits for a residual's frozen base
# (extra.base) and evaluate_sae evaluates a residual SAE boosted on its base. Here: the base plus every residual
# (stacked), on every eval set in one job, and the table.
from saeflow.studies.boosting.specs import STACKED
from saeflow.studies.boosting.workflow import BoostingWorkflow

BOOST_W = BoostingWorkflow(config, SAES, P)
RESIDUAL_SAES = BOOST_W.residuals
stacked_eval_json = BOOST_W.stacked_eval_json
boosting_inputs = BOOST_W.inputs


rule evaluate_boosted:
    input:
        model=model_marker(),
        baselines=lambda w: [baseline_json(es, MODEL, BOOST_W.base_layer()) for es in BOOST_W.eval_sets],
        caches=lambda w: [eval_cache(es, MODEL, BOOST_W.base_layer()) for es in BOOST_W.eval_sets],
        sae=lambda w: f"{sae_dir(BOOST_W.base)}/cfg.json",
        weights=lambda w: sae_weights(BOOST_W.base),
        residuals=[f"{sae_dir(r)}/cfg.json" for r in RESIDUAL_SAES],
        residual_weights=[sae_weights(r) for r in RESIDUAL_SAES],
    output:
        rows=[stacked_eval_json(es) for es in BOOST_W.eval_sets],
    log:
        f"logs/boosting/evaluate_{STACKED}.log",
    benchmark:
        f"benchmarks/boosting/evaluate_{STACKED}.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: EVAL_THREADS
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval", units=lambda w: len(BOOST_W.eval_sets)),
        gpu=config["gpu"],
        slurm_partition=SIZES.partition(),
    params:
        sae=STACKED,
        eval_sets=BOOST_W.eval_sets,
        saelens_eval_sets=default_saelens_sets(config, BOOST_W.eval_sets),
        model=lambda w: sae_model_params(BOOST_W.base),
        model_dir=model_dir_of,
        evaluation=config["evaluation"],
        device=config["device"],
        code=code("evaluate.py"),
    script:
        "../../../scripts/evaluate.py"


rule boosting_table:
    input:
        boosting_inputs,
    output:
        csv=report(
            f"{RESULTS}/tables/boosting.csv",
            caption="../../report/studies/boosting.rst",
            category="Tables",
            subcategory="Boosting",
        ),
        md=f"{RESULTS}/tables/boosting.md",
    log:
        "logs/tables/boosting.log",
    benchmark:
        "benchmarks/tables/boosting.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        entries=BOOST_W.entries(),
        code=code("boosting_table.py"),
    script:
        "../../../scripts/boosting_table.py"
