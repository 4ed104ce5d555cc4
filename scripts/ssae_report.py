"""Snakemake adapter: results/tables/ssae.{csv,md}, ssae_bins.csv, ssae_retrieval.{csv,md} and the SSAE
figures."""

from saeflow.runtime import redirect_to, run_main
from saeflow.studies.ssae.report import (
    concept_bins_frame,
    pareto_figure,
    retrieval_table,
    ssae_table,
    tail_recall_figure,
)
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    redirect_to(snakemake.log[0])
    p, out = snakemake.params, snakemake.output
    df = ssae_table(p.entries, p.columns)
    write_table(
        df,
        out.csv,
        out.md,
        preamble=(
            "# Specialised SAEs (GSAE finetuned on selected subdomain text; ERM / TERM; k sweep)\n\n"
            "Domain metrics on the subdomain's held-out text; general = the general corpus's held-out text. "
            "tail_recall_rare: share of rare token types (general-corpus count below "
            "ssae.concepts.rare_max_count) "
            "that are the dominant token of some latent. fvu_rare: FVU of the domain tokens of those rare "
            "types (the tail metric; per frequency bin in ssae_bins.csv). "
            "retrieval_*: the selection against the hidden "
            "in-domain "
            "documents of the candidate pool. general_fvu_gain: relative general-text FVU improvement over "
            "the GSAE; on the random selection (the GSAE finetuned on more general text) it is the "
            "convergence control, at most 0.01 for a GSAE trained to a plateau. autointerp_*: the interpret "
            "study's scores of the SAE (token-pattern explanations, detection / embedding beside the "
            "shuffled-explanation control), where it interprets it.\n\n"
        ),
    )
    bins = concept_bins_frame(p.entries)
    write_table(bins, out.bins)
    ret = retrieval_table(p.selections)
    write_table(
        ret,
        out.retrieval_csv,
        out.retrieval_md,
        preamble=(
            "# SSAE data selection: retrieval quality at the token budget\n\n"
            "Candidate pool = general training documents + the subdomain's non-seed training documents "
            "(labels "
            "hidden). precision = share of selected documents that are in-domain; recall = share of the "
            "in-domain "
            "documents selected; recall_ceiling = min(1, budget / in-domain tokens).\n\n"
        ),
    )
    for sub, pareto, tail in zip(p.subdomains, out.pareto, out.tail, strict=True):
        pareto_figure(df, sub, pareto)
        tail_recall_figure(bins, sub, tail, sparsity=p.figure_sparsity)


run_main(main)
