"""Where the SSAE study writes its outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeflow.studies.ssae.specs import ssae_subdomains, ssae_variants


def ssae_targets(config: Mapping[str, Any], saes: Mapping[str, Any]) -> list[str]:
    if not ssae_variants(config):
        return []
    tables = f"{config['results_dir']}/tables"
    figures = f"{config['results_dir']}/figures"
    subs = ssae_subdomains(config)
    return (
        [
            f"{tables}/ssae.csv",
            f"{tables}/ssae.md",
            f"{tables}/ssae_bins.csv",
            f"{tables}/ssae_retrieval.csv",
            f"{tables}/ssae_retrieval.md",
        ]
        + [f"{figures}/ssae_pareto_{s}.png" for s in subs]
        + [f"{figures}/tail_recall_{s}.png" for s in subs]
    )
