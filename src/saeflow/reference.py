"""What the papers report: the reference numbers our tables are set beside (from ../shared/METHODS.md).

Data only. Each `Reference` names the tables of ours it belongs next to by fnmatch patterns over the table's
file stem (``results/tables/<stem>.md``), so the summary works whatever subset of tables a config produces and
whatever a study names its table, as long as the name says what it is (``shift*``, ``boost*``, ...).
Our runs use their own model and data (the embedded default is SmolLM2-135M on BUG sentences), so these are
the numbers to compare against in kind, not to match digit for digit.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import pandas as pd

SSAE = "Muhamed, Diab & Smith 2024, Decoding Dark Matter: Specialized Sparse Autoencoders (SSAE)"
ORTSAE = "OrtSAE: orthogonal sparse autoencoders (Gemma-2-2B, L0 = 70, vs BatchTopK)"
BOOSTED = "Boosted / residual SAEs for domain adaptation (Gemma-2-2B)"


@dataclass(frozen=True)
class Reference:
    """One reported table or finding."""

    key: str
    """Short identifier (stable; used in tests)."""
    title: str
    paper: str
    setting: str
    """Model and data the paper used."""
    tables: tuple[str, ...]
    """fnmatch patterns over our table stems that this reference sits beside."""
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    note: str = ""

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows), columns=list(self.columns))

    def matches(self, table_stem: str) -> bool:
        return any(fnmatch.fnmatchcase(table_stem, pattern) for pattern in self.tables)


_BIB_COLUMNS = ("method", "profession_acc_%", "gender_acc_%", "worst_group_acc_%")
_BIB_TABLES = ("*bias_in_bios*", "*bib*", "*shift*", "*scr*", "*debias*")

REFERENCES: tuple[Reference, ...] = (
    Reference(
        key="ssae_shift_pythia",
        title="SSAE Table 1: SHIFT on Bias in Bios (balanced test set; profession ↑, gender ↓, worst group ↑)",
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
    Reference(
        key="boosted",
        title="Boosted (residual) SAEs on new domains",
        paper=BOOSTED,
        setting="Gemma-2-2B residual stream; base BatchTopK (k ≈ 50) + residual SAE per domain (1,024 latents, k = 5)",
        tables=("*boost*", "*residual*", "*domain*"),
        columns=("metric", "reported"),
        rows=(
            ("domain explained variance", "+25% to +59%"),
            ("domain cross-entropy (spliced) degradation", "down by up to >50%"),
            ("general-domain performance", "kept above 99%"),
        ),
    ),
    Reference(
        key="ssae_term",
        title="SSAE: data selection and Tilted ERM",
        paper=SSAE,
        setting="physics (arXiv) and toxicity subdomains; GSAE finetuned into SSAEs",
        tables=("*ssae*", "*retrieval*", "*selection*", "*term*", "*tail*", "*recall*"),
        columns=("finding", "reported"),
        rows=(
            ("data selection, subdomain perplexity", "Dense+TracIn ≈ BM25+TracIn > Dense > BM25 > random (OWT)"),
            ("TERM vs ERM, physics", "competitive around L0 ≈ 85–100"),
            ("TERM vs ERM, toxicity", "competitive around L0 ≈ 100–140"),
            ("TERM, tail concepts", "higher recall of rare (tail) token concepts"),
        ),
    ),
)


def references_for(table_stem: str) -> list[Reference]:
    """The references that belong beside our table `table_stem` (file name without .md), in REFERENCES order."""
    return [ref for ref in REFERENCES if ref.matches(table_stem)]
