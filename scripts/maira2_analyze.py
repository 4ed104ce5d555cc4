"""Snakemake adapter: MAIRA-2-style token filtering, explanations + scores of sampled latents of the study's
SAE on the kept tokens, each finding's best-latent AUROC against the report labels, the summary, and a
dashboard."""

from pathlib import Path

import pandas as pd

from saeflow.activations import ActivationStore
from saeflow.interpret.examples import latent_examples
from saeflow.interpret.explainers import TokenPatternConfig, TokenPatternExplainer
from saeflow.interpret.pipeline import interpret_sae, write_sae_dashboard
from saeflow.latents import document_max
from saeflow.runtime import redirect_to, run_main, set_threads
from saeflow.sae import load_sae
from saeflow.studies.maira2.data import read_radlabels, row_mask, token_filter
from saeflow.studies.maira2.report import findings_table, report_labels, selection_half, summary_table
from saeflow.tables import write_table

snakemake = globals()["snakemake"]


def main():
    from saeflow.models.causal_lm import load_lm

    redirect_to(snakemake.log[0])
    set_threads(snakemake.threads)
    p, out = snakemake.params, snakemake.output
    cfg = p.settings
    data = read_radlabels(p.asset_dir)
    lm = load_lm(Path(snakemake.input.model).parent)
    store = ActivationStore(snakemake.input.acts)
    extracted = set(store.manifest.docs)
    filt = token_filter(
        lm.tokenizer, [d for d in data.documents() if d["id"] in extracted], max_length=p.max_length
    )
    write_table(
        filt.summary,
        out.filtering_csv,
        out.filtering_md,
        floatfmt=".3f",
        preamble=f"MAIRA-2-style token filtering of the {len(extracted)} extracted radlabels reports (all "
        "their tokens as the extraction tokenises them, before its token budget cuts the last): kept, "
        "or why filtered (first matching filter; special = tokens without characters, e.g. BOS).\n\n",
    )
    mask = row_mask(store, filt.masks)
    print(f"{int(mask.sum())} of {len(mask)} stored tokens kept")
    sae = load_sae(Path(snakemake.input.cfg).parent)
    acts, result, decode = interpret_sae(
        sae, store, lm.tokenizer, cfg, sae_name=p.sae, embedder=p.embedder, row_mask=mask
    )
    write_table(result.scores, out.autointerp_csv, out.autointerp_md, floatfmt=".3f")
    doc_max = document_max(sae, store, mask=mask).numpy()
    labels = report_labels(data, store.manifest.docs)
    select = selection_half(store.manifest.docs, int(cfg["seed"]))
    findings = findings_table(doc_max, labels, data.findings, int(p.min_positives), select=select)
    explainer = TokenPatternExplainer(TokenPatternConfig(**(cfg.get("token") or {})))
    findings["explanation"] = [
        explainer.explain(latent_examples(acts, int(lat), decode)).text for lat in findings.best_latent
    ]
    write_table(
        findings,
        out.findings_csv,
        out.findings_md,
        floatfmt=".3f",
        preamble=f"Per finding (>= {p.min_positives} positive reports in each half of {len(doc_max)}), the "
        "latent whose maximum over the report's kept tokens best separates reports labelled 'definitely "
        "present' from the rest on one half (auroc_selection, in-sample), and its AUROC on the other, "
        "held-out half (auroc), with its token-pattern explanation.\n\n",
    )
    n_live = int((acts.frequency > 0).sum())
    summary = summary_table(
        filtering=filt.summary,
        scores=result.scores,
        findings=findings,
        threshold=float(cfg["threshold"]),
        n_live=n_live,
        d_sae=acts.d_sae,
    )
    write_table(
        summary,
        out.summary_csv,
        out.summary_md,
        floatfmt=".3f",
        preamble=f"{p.sae} (Matryoshka BatchTopK, layer {p.layer}) on {len(doc_max)} radlabels reports.\n\n",
    )
    write_sae_dashboard(
        Path(out.dashboard).parent,
        p.sae,
        acts,
        result,
        decode,
        sae.W_dec.detach(),
        lm.model.get_output_embeddings().weight.detach(),
        cfg,
    )
    print(pd.DataFrame(summary).to_string())


run_main(main)
