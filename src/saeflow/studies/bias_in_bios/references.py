"""The papers' numbers printed beside this study's tables (saeflow.reference.Reference)."""

from saeflow.reference import Reference

SSAE = "Muhamed, Diab & Smith 2024, Decoding Dark Matter: Specialized Sparse Autoencoders (SSAE)"
_BIB_COLUMNS = ("method", "profession_acc_%", "gender_acc_%", "worst_group_acc_%")
_BIB_TABLES = ("*bias_in_bios*", "*bib*", "*shift*", "*scr*", "*debias*")

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="ssae_shift_pythia",
        title=(
            "SSAE Table 1: SHIFT on Bias in Bios (balanced test set; profession ↑, gender ↓, worst group ↑)"
        ),
        paper=SSAE,
        setting="Pythia-70M-deduped, residual stream, professor vs nurse (LabHC/bias_in_bios)",
        tables=_BIB_TABLES,
        columns=_BIB_COLUMNS,
        rows=(
            ("Original", 61.9, 87.4, 24.4),
            ("CBP", 83.3, 60.1, 67.7),
            ("Neuron skyline", 75.5, 73.2, 41.5),
            ("GSAE SHIFT", 88.5, 54.0, 76.0),
            ("SSAE SHIFT", 90.2, 53.4, 88.5),
            ("GSAE SHIFT + retrain", 93.1, 52.0, 89.0),
            ("SSAE SHIFT + retrain", 93.4, 51.9, 89.5),
            ("Oracle", 93.0, 49.4, 91.9),
        ),
        note="Headline: SSAE SHIFT beats GSAE SHIFT by +12.5 points worst-group accuracy (88.5 vs 76.0).",
    ),
    Reference(
        key="shift_gemma",
        title="SHIFT on Gemma-2-2B (balanced test set)",
        paper=SSAE,
        setting="Gemma-2-2B, residual stream, professor vs nurse (LabHC/bias_in_bios)",
        tables=_BIB_TABLES,
        columns=_BIB_COLUMNS,
        rows=(
            ("Original", 67.7, 81.9, 18.2),
            ("SHIFT", 76.0, 51.5, 50.0),
            ("SHIFT + retrain", 95.0, 52.4, 92.9),
            ("Oracle", 95.0, 50.6, 93.1),
        ),
    ),
)
