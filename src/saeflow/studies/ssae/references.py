"""The papers' numbers printed beside this study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

SSAE = "Muhamed, Diab & Smith 2024, Decoding Dark Matter: Specialized Sparse Autoencoders (SSAE)"

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="ssae_term",
        title="SSAE: data selection and Tilted ERM",
        paper=SSAE,
        setting="physics (arXiv) and toxicity subdomains; GSAE finetuned into SSAEs",
        tables=("*ssae*", "*retrieval*", "*selection*", "*term*", "*tail*", "*recall*"),
        columns=("finding", "reported"),
        rows=(
            (
                "data selection, subdomain perplexity",
                "Dense+TracIn ≈ BM25+TracIn > Dense > BM25 > random (OWT)",
            ),
            ("TERM vs ERM, physics", "competitive around L0 ≈ 85–100"),
            ("TERM vs ERM, toxicity", "competitive around L0 ≈ 100–140"),
            ("TERM, tail concepts", "higher recall of rare (tail) token concepts"),
        ),
    ),
)
