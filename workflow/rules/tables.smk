# Tables gathered from per-job JSON outputs.


TARGETS += [f"{RESULTS}/tables/core_metrics.csv", f"{RESULTS}/tables/core_metrics.md"]


def core_eval_jsons():
    return [eval_json(sae, es) for sae in SAES for es in config["evaluation"]["eval_sets"]]


rule core_metrics_table:
    input:
        evals=core_eval_jsons(),
    output:
        csv=f"{RESULTS}/tables/core_metrics.csv",
        md=f"{RESULTS}/tables/core_metrics.md",
    log:
        "logs/tables/core_metrics.log",
    benchmark:
        "benchmarks/tables/core_metrics.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/core_metrics_table.py"
