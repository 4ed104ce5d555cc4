# results/tables/summary.md: the core metrics and every active study's tables, each beside the papers' numbers
# (the studies' references, saeflow.studies.all_references).


rule summary_table:
    input:
        tables=summary_tables,
        figures=summary_figures,
    output:
        md=report(summary_path(), caption="../report/summary.rst", category="Summary"),
    log:
        "logs/tables/summary.log",
    benchmark:
        "benchmarks/tables/summary.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        code=code("summary_table.py"),
    script:
        "../../scripts/summary_table.py"
