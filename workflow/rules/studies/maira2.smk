# MAIRA-2-style study (saeflow.studies.maira2): the radlabels reports as the study's corpus (maira2_texts), extracted
# by the core rule, the rows MAIRA-2-style filtering keeps (maira2_kept) on which the core rule trains
# maira2-matryoshka, then explanations + scores and per-finding best-latent AUROC (maira2_analyze).
from saeflow.studies.maira2.workflow import Maira2Workflow

MAIRA2_W = Maira2Workflow(config, SAES, P)
MAIRA2_CFG = MAIRA2_W.cfg


rule maira2_texts:
    input:
        radlabels=asset_marker(MAIRA2_W.asset),
    output:
        texts=texts(MAIRA2_W.textset),
    log:
        "logs/maira2/texts.log",
    benchmark:
        "benchmarks/maira2/texts.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("table"),
        runtime=SIZES.runtime("table"),
    params:
        asset_dir=lambda w, input: os.path.dirname(input.radlabels),
        code=code("maira2_texts.py"),
    script:
        "../../../scripts/maira2_texts.py"


rule maira2_kept:
    input:
        acts=MAIRA2_W.acts,
        model=model_marker(),
        radlabels=asset_marker(MAIRA2_W.asset),
    output:
        manifest=MAIRA2_W.kept_acts,
    log:
        "logs/maira2/kept.log",
    benchmark:
        "benchmarks/maira2/kept.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("analysis"),
        runtime=SIZES.runtime("analysis"),
    params:
        asset_dir=lambda w, input: os.path.dirname(input.radlabels),
        max_length=config["model"]["max_length"],
        code=code("maira2_kept.py"),
    script:
        "../../../scripts/maira2_kept.py"


ruleorder: maira2_kept > extract_activations


rule maira2_analyze:
    input:
        cfg=P.sae_cfg(MAIRA2_W.sae),
        weights=sae_weights(MAIRA2_W.sae),
        acts=MAIRA2_W.acts,
        model=model_marker(),
        radlabels=asset_marker(MAIRA2_W.asset),
        embedder=uri_inputs(MAIRA2_W.embedder),
    output:
        summary_csv=report(
            MAIRA2_W.table("summary"),
            caption="../../report/studies/maira2.rst",
            category="Tables",
            subcategory="MAIRA-2",
        ),
        summary_md=MAIRA2_W.table("summary", "md"),
        filtering_csv=MAIRA2_W.table("filtering"),
        filtering_md=MAIRA2_W.table("filtering", "md"),
        findings_csv=MAIRA2_W.table("findings"),
        findings_md=MAIRA2_W.table("findings", "md"),
        autointerp_csv=MAIRA2_W.table("autointerp"),
        autointerp_md=MAIRA2_W.table("autointerp", "md"),
        dashboard=f"{MAIRA2_W.dir}/dashboard/index.html",
    log:
        "logs/maira2/analyze.log",
    benchmark:
        "benchmarks/maira2/analyze.tsv"
    conda:
        "../../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=SIZES.mem_mb("lm_eval"),
        runtime=SIZES.runtime("lm_eval"),
    params:
        sae=MAIRA2_W.sae,
        layer=SAES[MAIRA2_W.sae]["layer"],
        settings=MAIRA2_W.params(),
        asset_dir=lambda w, input: os.path.dirname(input.radlabels),
        max_length=config["model"]["max_length"],
        min_positives=5,
        embedder=resolve(MAIRA2_W.embedder),
        code=code("maira2_analyze.py"),
    script:
        "../../../scripts/maira2_analyze.py"
