# saeflow: corpus -> activations -> SAE training -> evaluation -> the active studies' tables -> summary.
# Thin on purpose: core helpers live in workflow/rules/common.smk, logic in src/saeflow; each study
# (saeflow.studies.STUDIES) brings workflow/rules/studies/<study>.smk and runs when its config section is present.
import os
import sys

# job scripts and the DAG use this checkout's library, whatever saeflow is installed
sys.path.insert(0, os.path.join(str(workflow.basedir), "src"))

from saeflow.config import check_config_files, check_run_device, load_workflow_config

CONFIG_YAML = os.path.join(workflow.basedir, "config", "config.yaml")
# before Snakemake merges them: a YAML syntax error or a duplicated key is one line naming the file and line
check_config_files(CONFIG_YAML, *workflow.overwrite_configfiles)


configfile: CONFIG_YAML


config = load_workflow_config(
    config, os.path.join(workflow.basedir, "config", "schema.yaml"), workflow=workflow
)


report: "workflow/report/workflow.rst"


onstart:
    check_run_device(config, workflow)


include: "workflow/rules/common.smk"
include: "workflow/rules/assets.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/summary.smk"


for study in STUDIES:

    include: study.rule_file


rule all:
    default_target: True
    input:
        all_targets(),
