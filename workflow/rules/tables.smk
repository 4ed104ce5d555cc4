# Tables gathered from per-job JSON outputs.


rule core_metrics_table:
    input:
        evals=core_eval_jsons(),
    output:
        csv=report(
            f"{RESULTS}/tables/core_metrics.csv",
            caption="../report/core_metrics.rst",
            category="Tables",
            subcategory="Core metrics",
        ),
        md=f"{RESULTS}/tables/core_metrics.md",
    log:
        "logs/tables/core_metrics.log",
    benchmark:
        "benchmarks/tables/core_metrics.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        code=code("core_metrics_table.py"),
    script:
        "../../scripts/core_metrics_table.py"
