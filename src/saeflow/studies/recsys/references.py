"""The papers' numbers printed beside this study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

RECSAE = (
    "Wang et al. 2024, Interpret the Internal States of Recommendation Model with Sparse Autoencoder (RecSAE)"
)
SASREC = "Kang & McAuley 2018, Self-Attentive Sequential Recommendation (SASRec)"

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="recsae_confidence",
        title="RecSAE: concept confidence of SAE latents",
        paper=RECSAE,
        setting="SASRec on MovieLens-1M (ReChorus), TopK SAE (1,024 latents, k in {4, 8, 16}) on the user "
        "vector "
        "before the item dot product; LLM explanations, 5 + 5 test sequences per latent",
        tables=("*recsys*",),
        columns=("metric", "reported"),
        rows=(
            ("mean confidence (SAE latents)", "0.593"),
            ("latents with confidence >= 0.8", "398 of 2,026"),
            ("latents with confidence >= 0.9", "168 of 2,026"),
            ("mean confidence (baseline)", "0.407"),
        ),
        note="Our explainer is TF-IDF over item metadata (deterministic), not an LLM.",
    ),
    Reference(
        key="sasrec_ml1m",
        title="SASRec next-item ranking",
        paper=SASREC,
        setting="MovieLens-1M, leave-one-out, target ranked against 100 sampled unseen items",
        tables=("*recsys*",),
        columns=("metric", "reported"),
        rows=(("HR@10 (100 sampled negatives)", "0.8245"), ("NDCG@10 (100 sampled negatives)", "0.5905")),
        note="Our default runs MovieLens-100K; config/paper/recsae_ml1m.yaml runs ML-1M.",
    ),
)
