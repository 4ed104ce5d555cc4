"""The MAIRA-2 SAE paper's findings printed beside this study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="maira2_sae",
        title="SAE latents of a radiology LLM (MAIRA-2)",
        paper="Bouzid et al. 2025, Insights into a radiology-specialised multimodal LLM with sparse "
        "autoencoders",
        setting="MAIRA-2 (7B), Matryoshka BatchTopK SAE on layer 15 of the residual stream, MIMIC-CXR "
        "reports; image "
        "and boilerplate prompt tokens filtered out; LLM explanations scored by detection",
        tables=("maira2_*",),
        columns=("finding", "paper"),
        rows=(
            ("architecture", "Matryoshka BatchTopK at layer 15"),
            (
                "token filtering",
                "image tokens and boilerplate prompt tokens removed before training / interpretation",
            ),
            ("explanations", "many latents map to clinical concepts (findings, devices, report structure)"),
            ("steering", "mixed success"),
        ),
        note="Ours: SmolLM2-135M on 1,000 synthetic radlabels reports with token-pattern explanations; an "
        "exploration sketch had per-finding best-latent AUROC 0.84-0.98 and token-rule detection 0.75 vs "
        "0.51 "
        "shuffled.",
    ),
)
