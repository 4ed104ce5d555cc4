# saeflow: corpus -> retrieval -> activations -> SAE training -> evaluation -> tables.
# Thin on purpose: helpers live in workflow/rules/common.smk, logic in src/saeflow.
import os
import sys

sys.path.insert(0, os.path.join(str(workflow.basedir), "src"))

from saeflow.config import load_workflow_config


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


config = load_workflow_config(config, os.path.join(workflow.basedir, "config", "schema.yaml"))


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/assets.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/ssae.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/bias_in_bios.smk"
include: "workflow/rules/architectures.smk"
include: "workflow/rules/tables.smk"
# keep last: gathers every table the includes above added to TARGETS
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    input:
        all_targets(),
