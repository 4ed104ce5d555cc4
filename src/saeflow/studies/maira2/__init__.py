"""MAIRA-2-style study: a Matryoshka BatchTopK SAE at layer 15 of the run's LM on radiology reports
(radlabels), its latents explained and scored after MAIRA-2-style token filtering, and each finding's
best-latent AUROC."""

from saeflow.studies.maira2.references import REFERENCES
from saeflow.studies.maira2.specs import maira2_budget, maira2_corpora, maira2_specs
from saeflow.study import Study


def _targets(config, saes) -> list[str]:
    tables = f"{config['results_dir']}/tables"
    return [
        f"{tables}/maira2_{stem}.{ext}"
        for stem in ("summary", "filtering", "findings", "autointerp")
        for ext in ("csv", "md")
    ]


STUDY = Study(
    name="maira2",
    saes=maira2_specs,
    extraction_budget=maira2_budget,
    corpora=maira2_corpora,
    targets=_targets,
    references=REFERENCES,
)
