"""The papers' numbers printed beside this study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

ORTSAE = "OrtSAE: orthogonal sparse autoencoders (Gemma-2-2B, L0 = 70, vs BatchTopK)"

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="ortsae",
        title="OrtSAE vs BatchTopK at matched sparsity (relative change)",
        paper=ORTSAE,
        setting="Gemma-2-2B residual stream, L0 = 70",
        tables=("*ortsae*", "*architecture*", "*geometry*", "*absorption*", "*orthogonal*"),
        columns=("metric", "OrtSAE vs BatchTopK"),
        rows=(
            ("distinct features", "+9%"),
            ("feature absorption", "−65%"),
            ("feature composition", "−15%"),
            ("SCR (spurious correlation removal)", "+6%"),
            ("explained variance", "similar"),
            ("training step time", "+ a few % (penalty overhead)"),
        ),
    ),
)
