"""The papers' numbers printed beside this study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

BOOSTED = "Boosted / residual SAEs for domain adaptation (Gemma-2-2B)"

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="boosted",
        title="Boosted (residual) SAEs on new domains",
        paper=BOOSTED,
        setting="Gemma-2-2B residual stream; base BatchTopK (k ≈ 50) + residual SAE per domain (1,024 "
        "latents, k = 5)",
        tables=("*boost*", "*residual*", "*domain*"),
        columns=("metric", "reported"),
        rows=(
            ("domain explained variance", "+25% to +59%"),
            ("domain cross-entropy (spliced) degradation", "down by up to >50%"),
            ("general-domain performance", "kept above 99%"),
        ),
    ),
)
