"""The papers' numbers printed beside the protein study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

PLM_SAE = (
    "Villegas Garcia & Ansuini 2025, Interpreting and Steering Protein Language Models through Sparse "
    "Autoencoders"
)
INTERPLM = (
    "Simon & Zou 2024, InterPLM: Discovering Interpretable Features in Protein Language Models via SAEs"
)

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="interplm_concepts",
        title=(
            "Concepts covered by SAE latents vs neurons (F1 > 0.5 on test, thresholds picked on validation)"
        ),
        paper=INTERPLM,
        setting=(
            "ESM-2 8M, SAEs per layer on UniRef50 residues; Swiss-Prot residue annotations (433 concepts)"
        ),
        tables=("*protein*concept*",),
        columns=("unit set", "units with F1 > 0.5", "concepts covered"),
        rows=(("SAE latents (best layer)", "up to 2,548", "143"), ("ESM-2 neurons", "46", "15")),
        note="Ours: UniRep-64 by default on gor4 PDB chains with 11 sequence / H/E/C concepts; compare in "
        "kind.",
    ),
    Reference(
        key="plm_sae_steering",
        title="Steering generation toward zinc-finger domains with shortlisted SAE latents",
        paper=PLM_SAE,
        setting="ESM-2 8M, ReLU + L1 SAE at hidden_states[4]; latents up-weighted during generation",
        tables=("*protein*steer*",),
        columns=("metric", "reported"),
        rows=(("trials whose sequences matched zinc-finger motifs", "24 of 180"),),
        note="Ours targets helix (oracle helix fraction) and reports the C2H2 zinc-finger motif rate beside "
        "it.",
    ),
    Reference(
        key="plm_sae_fidelity",
        title="SAE setting of the protein papers",
        paper=f"{PLM_SAE}; {INTERPLM}",
        setting="ESM-2 8M (d = 320), layer 4 residual stream",
        tables=("*protein*fidel*",),
        columns=("paper", "SAE"),
        rows=(
            ("plm-sae", "ReLU + L1 on esm.encoder.layer[3] output"),
            ("InterPLM", "ReLU + L1, 10,240 latents per layer"),
        ),
        note="Neither paper reports % CE recovered in a form comparable with ours (next-residue CE of "
        "UniRep).",
    ),
)
