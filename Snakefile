# saeflow: corpus -> retrieval -> activations -> SAE training -> evaluation -> tables.
# Thin on purpose: helpers live in workflow/rules/common.smk, logic in src/saeflow.
import os
import sys

sys.path.insert(0, os.path.join(str(workflow.basedir), "src"))

from saeflow.config import load_workflow_config


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


config = load_workflow_config(config, os.path.join(workflow.basedir, "config", "schema.yaml"))


include: "workflow/rules/common.smk"
include: "workflow/rules/assets.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"


rule all:
    input:
        all_targets(),
    default_target: True
