"""RecSAE study: SAEs on a sequential recommender's (SASRec's) user states, concept dictionary, latent
ablation."""

from saeflow.studies.recsys.references import REFERENCES
from saeflow.studies.recsys.specs import recsys_active, recsys_corpora, recsys_specs
from saeflow.study import Study


def _targets(config, saes) -> list[str]:
    if not recsys_active(config):
        return []
    tables, figures = f"{config['results_dir']}/tables", f"{config['results_dir']}/figures"
    out = [
        f"{tables}/recsys_{t}.{ext}"
        for t in ("model", "sae", "concepts", "ablation")
        for ext in ("csv", "md")
    ]
    return out + [f"{figures}/recsys_confidence_hist.png", f"{figures}/recsys_ablation.png"]


STUDY = Study(
    name="recsys", saes=recsys_specs, corpora=recsys_corpora, targets=_targets, references=REFERENCES
)
