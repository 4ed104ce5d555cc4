"""The papers' numbers printed beside the interpret study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="ssae_autointerp",
        title="Automated interpretability of Specialized SAEs (ordering reported)",
        paper="Muhamed et al. 2024, Decoding dark matter: Specialized sparse autoencoders for interpreting "
        "rare "
        "concepts in foundation models",
        setting="Gemma-2-2B/9B residual stream; physics and toxicity subdomains; LLM explanations scored by "
        "detection F1",
        tables=("*autointerp*",),
        columns=("SAE", "autointerp (ordering)"),
        rows=(
            ("SSAE, Dense retrieval + TERM (tilt)", "highest"),
            ("SSAE, Dense retrieval (ERM)", "middle"),
            ("GSAE finetuned on random-corpus text (baseline)", "lowest"),
        ),
        note="The paper reports the ordering Dense + tilt > Dense > random-corpus baseline; ours compares "
        "the "
        "configured pair (e.g. ssae-medical-dense-erm-k32 vs ssae-medical-random-erm-k32) with token-pattern "
        "explanations, always beside the shuffled-explanation control.",
    ),
    Reference(
        key="maira2_steering",
        title="Steering a radiology LLM with SAE latents",
        paper="Bouzid et al. 2025, Insights into a radiology-specialised multimodal LLM with sparse "
        "autoencoders "
        "(MAIRA-2)",
        setting="MAIRA-2 (7B), Matryoshka BatchTopK SAE on layer 15; decoder directions added during "
        "generation",
        tables=("*steering*", "*autointerp*"),
        columns=("finding", "value"),
        rows=(
            ("steering toward findings", "mixed success: some latents steer, many do not, fluency degrades"),
            ("explanations", "LLM explanations from top activations, scored by detection"),
        ),
    ),
)
