"""Snakemake adapter: the architecture table (evaluations joined with each SAE's analysis and, for ReLU + L1,
its final L1 coefficient) and the decoder geometry histogram."""

from saeflow.io import read_json
from saeflow.runtime import redirect_to, run_main
from saeflow.studies.architectures.analysis import architecture_rows, architectures_table, decoder_cos_hist
from saeflow.tables import read_sae_columns, write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    entries = snakemake.params.entries  # {label: {sae, evals: {eval_set: path}, analysis: path, cfg: path}}
    labels = {e["sae"]: label for label, e in entries.items()}
    evals = {(e["sae"], es): path for e in entries.values() for es, path in e["evals"].items()}
    analyses = {e["sae"]: e["analysis"] for e in entries.values()}
    cfgs = {e["sae"]: e["cfg"] for e in entries.values()}
    columns = snakemake.params.columns  # {sae: per-SAE column files other studies publish}
    published = list(dict.fromkeys(k for files in columns.values() for k in read_sae_columns(files)))
    df = architectures_table(architecture_rows(labels, evals, analyses, cfgs, columns), published)
    write_table(df, snakemake.output.csv, snakemake.output.md)
    decoder_cos_hist(
        {label: read_json(e["analysis"])["geometry"]["max_abs_cos"] for label, e in entries.items()},
        snakemake.output.figure,
        distinct_threshold=snakemake.params.distinct_threshold,
    )


run_main(main)
