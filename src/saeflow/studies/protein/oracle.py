"""Scoring generated proteins: an independent H/E/C oracle, motif hits, naturalness and diversity.

The oracle is deliberately not the subject model: a multinomial logistic regression on the amino-acid
composition of windows around each residue (left flank, centre residue, right flank), trained on gor4's
labelled chains. It is a weak but independent judge of "how helical" a sequence reads; its held-out
per-residue accuracy is reported with it (measured: 0.59 three-state accuracy on gor4 validation chains,
trained on 60k residues in ≈ 2 s; more residues do not help). It also calls degenerate repeats (poly-A/R,
poly-W/F) helical, so read helix rates beside the low-complexity share and the composition divergence.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from sklearn.linear_model import LogisticRegression

from saeflow.errors import DataError
from saeflow.studies.protein.concepts import motif_mask
from saeflow.studies.protein.data import SS_LETTERS, ProteinRecord

AA = "ACDEFGHIKLMNPQRSTVWY"
_AA_INDEX = {a: i for i, a in enumerate(AA)}


def window_features(sequence: str, half: int = 7) -> np.ndarray:
    """[n, 60] per residue: composition of the `half` residues on the left, the residue itself (one-hot) and
    the `half` residues on the right (counts / half; unknown letters count nowhere)."""
    n = len(sequence)
    onehot = np.zeros((n + 2 * half, len(AA)))
    for i, a in enumerate(sequence):
        if a in _AA_INDEX:
            onehot[i + half, _AA_INDEX[a]] = 1
    csum = np.vstack([np.zeros(len(AA)), np.cumsum(onehot, axis=0)])
    idx = np.arange(n) + half
    left = (csum[idx] - csum[idx - half]) / half
    right = (csum[idx + half + 1] - csum[idx + 1]) / half
    return np.hstack([left, onehot[idx], right])


@dataclass(frozen=True)
class SecondaryStructureOracle:
    """Window-composition H/E/C predictor (see the module docstring)."""

    model: LogisticRegression
    half: int
    accuracy: float
    """Per-residue accuracy on the held-out chains given to `fit`."""

    @classmethod
    def fit(
        cls,
        train: Sequence[ProteinRecord],
        heldout: Sequence[ProteinRecord],
        *,
        half: int = 7,
        max_residues: int = 60_000,
        seed: int = 0,
    ) -> SecondaryStructureOracle:
        def xy(records: Sequence[ProteinRecord]) -> tuple[np.ndarray, np.ndarray]:
            if not records or any(r.labels is None for r in records):
                raise DataError("the secondary-structure oracle needs chains with H/E/C labels")
            x = np.vstack([window_features(r.sequence, half) for r in records])
            y = np.array([SS_LETTERS.index(c) for r in records for c in r.labels])
            return x, y

        x, y = xy(train)
        if len(y) > max_residues:
            keep = np.random.default_rng(seed).choice(len(y), max_residues, replace=False)
            x, y = x[keep], y[keep]
        model = LogisticRegression(max_iter=300).fit(x, y)
        hx, hy = xy(heldout)
        return cls(model, half, float((model.predict(hx) == hy).mean()))

    def to_dict(self) -> dict:
        """Plain JSON (no pickle: a results directory may hold files a user placed there)."""
        return {
            "half": self.half,
            "accuracy": self.accuracy,
            "classes": self.model.classes_.tolist(),
            "coef": self.model.coef_.tolist(),
            "intercept": self.model.intercept_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> SecondaryStructureOracle:
        try:
            model = LogisticRegression()
            model.classes_ = np.asarray(d["classes"])
            model.coef_ = np.asarray(d["coef"], dtype=np.float64)
            model.intercept_ = np.asarray(d["intercept"], dtype=np.float64)
            model.n_features_in_ = model.coef_.shape[1]
            return cls(model, int(d["half"]), float(d["accuracy"]))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise DataError(f"the oracle file is malformed ({err}); delete it to refit") from err

    def predict(self, sequence: str) -> str:
        return "".join(SS_LETTERS[i] for i in self.model.predict(window_features(sequence, self.half)))

    def helix_fraction(self, sequence: str) -> float:
        return self.predict(sequence).count("H") / max(len(sequence), 1)


def composition(sequences: Sequence[str]) -> np.ndarray:
    """[20] amino-acid frequencies (standard letters only)."""
    counts = Counter(a for s in sequences for a in s if a in _AA_INDEX)
    total = max(sum(counts.values()), 1)
    return np.array([counts[a] / total for a in AA])


def composition_kl(sequences: Sequence[str], background: np.ndarray, eps: float = 1e-4) -> float:
    """KL(generated ‖ natural) of amino-acid composition, in nats (eps-smoothed)."""
    p, q = composition(sequences) + eps, np.asarray(background) + eps
    p, q = p / p.sum(), q / q.sum()
    return float((p * np.log(p / q)).sum())


def identity(a: str, b: str) -> float:
    """Ungapped identity over the shorter length (generated sequences are aligned by position)."""
    n = min(len(a), len(b))
    return sum(x == y for x, y in zip(a[:n], b[:n], strict=True)) / max(n, 1)


def mean_pairwise_identity(sequences: Sequence[str]) -> float:
    pairs = list(combinations(sequences, 2))
    return float(np.mean([identity(a, b) for a, b in pairs])) if pairs else float("nan")


def longest_homopolymer(sequence: str) -> int:
    best = run = 0
    for i, a in enumerate(sequence):
        run = run + 1 if i and a == sequence[i - 1] else 1
        best = max(best, run)
    return best


def low_complexity_share(sequence: str, window: int = 12, min_bits: float = 2.2) -> float:
    """Share of residues inside a `window` whose Shannon entropy is below `min_bits` (SEG's trigger
    window/K2)."""
    n = len(sequence)
    if n < window:
        return 0.0
    low = np.zeros(n, dtype=bool)
    for start in range(n - window + 1):
        counts = Counter(sequence[start : start + window]).values()
        bits = -sum(c / window * math.log2(c / window) for c in counts)
        if bits < min_bits:
            low[start : start + window] = True
    return float(low.mean())


def motif_rate(sequences: Sequence[str], pattern: str) -> float:
    """Share of sequences with at least one match of a PROSITE pattern."""
    return float(np.mean([motif_mask(s, pattern).any() for s in sequences])) if sequences else float("nan")
