# Convergence (saeflow.studies.convergence): the <sae>-control finetunes are ordinary registry SAEs (train_sae,
# evaluate_sae); here the table of every training curve and the figure.


from saeflow.studies.convergence.specs import monitored_saes

MONITORED = monitored_saes(SAES, SAE_ALIASES)


rule convergence_table:
    input:
        metrics=[P.sae_metrics(n) for n in MONITORED],
    output:
        csv=report(
            f"{RESULTS}/tables/convergence.csv",
            caption="../../report/studies/convergence.rst",
            category="Tables",
            subcategory="Convergence",
        ),
        md=f"{RESULTS}/tables/convergence.md",
        figure=report(
            f"{RESULTS}/figures/training_curves.png",
            caption="../../report/studies/convergence_curves.rst",
            category="Figures",
            subcategory="Convergence",
        ),
    log:
        "logs/convergence/table.log",
    benchmark:
        "benchmarks/convergence/table.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        specs={n: SAES[n] for n in MONITORED},  # in the order of input.metrics
        code=code("convergence_table.py"),
    script:
        "../../../scripts/convergence_table.py"
