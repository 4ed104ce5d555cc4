# results/tables/summary.md: every table in TARGETS, each beside the papers' numbers (saeflow.reference).
# The inputs are read from TARGETS when the DAG is built, after every stage has added its outputs; the
# Snakefile includes this file last so that the summary itself joins TARGETS before `rule all`.

SUMMARY = f"{RESULTS}/tables/summary.md"


rule summary_table:
    input:
        # core metrics first, then the studies' tables in the order their stages added them
        tables=lambda w: sorted(
            (
                t
                for t in TARGETS
                if t.startswith(f"{RESULTS}/tables/") and t.endswith(".md") and t != SUMMARY
            ),
            key=lambda t: os.path.basename(t) != "core_metrics.md",
        ),
        figures=lambda w: [t for t in TARGETS if t.endswith(".png")],
    output:
        md=report(SUMMARY, caption="../report/summary.rst", category="Summary"),
    log:
        "logs/tables/summary.log",
    benchmark:
        "benchmarks/tables/summary.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=SAEFLOW_VERSION,
    script:
        "../../scripts/summary_table.py"


TARGETS.append(SUMMARY)
