"""Snakemake adapter: download, verify and extract one embedded asset (see saeflow.assets)."""

from pathlib import Path

from saeflow.assets import fetch_asset
from saeflow.runtime import redirect_to, run_main

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
redirect_to(snakemake.log[0])


def main() -> None:
    result = fetch_asset(snakemake.wildcards.asset, snakemake.params.spec, snakemake.params.resources_dir)
    expected = Path(snakemake.output.marker)
    if result.marker.resolve() != expected.resolve():
        raise RuntimeError(f"fetch_asset wrote {result.marker}, but the rule declares {expected}")


run_main(main)
