"""Scorers of explanations, with the literature's metric names, always beside a shuffled-explanation control.

- detection (delphi / MAIRA-2): classify held-out activating vs non-activating contexts from the explanation;
  balanced accuracy, F1 (threshold 0.5 on the classifier's score) and AUROC;
- fuzzing: activating contexts with the truly active tokens highlighted vs the same number of random tokens
  highlighted; the classifier judges whether the highlight fits the explanation;
- embedding: cosine similarity of the explanation's embedding to each context's, AUROC only;
- control: each latent scored with another latent's explanation (a seeded derangement); a scorer that does not
  beat it measures nothing.
Classifiers: `RuleClassifier` (deterministic, reads a token explanation's pattern or quoted tokens in its
text) or `saeflow.interpret.llm.LLMClassifier`.
"""

from __future__ import annotations

import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from saeflow.errors import DataError
from saeflow.interpret.examples import Example, LatentExamples
from saeflow.interpret.explainers import Explanation, normalise

# --------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count 1/2); nan if one
    class."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    p, n = int(y.sum()), int((~y).sum())
    if p == 0 or n == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y].sum() - p * (p + 1) / 2) / (p * n))


@dataclass(frozen=True)
class BinaryMetrics:
    balanced_accuracy: float
    f1: float
    auroc: float
    n_pos: int
    n_neg: int


def binary_metrics(
    labels: Sequence[bool], scores: Sequence[float], threshold: float | None = 0.5
) -> BinaryMetrics:
    """Balanced accuracy and F1 of `score >= threshold` (nan without a threshold), and AUROC of the scores."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if len(y) != len(s):
        raise DataError(f"{len(y)} labels but {len(s)} scores")
    p, n = int(y.sum()), int((~y).sum())
    bacc = f1 = float("nan")
    if threshold is not None:
        pred = s >= threshold
        tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
        tn, fn = int((~pred & ~y).sum()), int((~pred & y).sum())
        tpr = tp / p if p else float("nan")
        tnr = tn / n if n else float("nan")
        bacc = (tpr + tnr) / 2
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return BinaryMetrics(bacc, f1, auroc(y, s), p, n)


# --------------------------------------------------------------------------------------------------
# classifiers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    scores: list[float]
    """Per example: how likely it is activating (detection) / correctly highlighted (fuzzing), in [0, 1]."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Classifier(ABC):
    name: str = "classifier"

    @abstractmethod
    def classify(
        self,
        explanation: Explanation,
        examples: Sequence[Example],
        highlights: Sequence[Sequence[int]] | None = None,
    ) -> Classification:
        """Detection when `highlights` is None; fuzzing otherwise (highlighted token indices per example)."""


def pattern_items(explanation: Explanation) -> list[tuple[str, float]]:
    """(normalised token, weight) of a token explanation; else the quoted strings of its text, weight 1."""
    toks = explanation.pattern.get("tokens") if explanation.pattern else None
    if toks:
        return [(normalise(t), float(w)) for t, w in toks]
    quoted = re.findall(r'"([^"]+)"|“([^”]+)”|\'([^\']+)\'', explanation.text)
    return [(normalise(next(q for q in g if q)), 1.0) for g in quoted]


class RuleClassifier(Classifier):
    """Detection: 0.5 + 0.5·(largest weight of a pattern token present in the window), 0 with none present.
    Fuzzing: the same, looking only at the highlighted tokens."""

    name = "rule"

    def classify(self, explanation, examples, highlights=None):
        items = {}
        for tok, w in pattern_items(explanation):
            items[tok] = max(w, items.get(tok, 0.0))
        scores = []
        for i, e in enumerate(examples):
            idx = range(len(e.tokens)) if highlights is None else highlights[i]
            found = [items[t] for t in (normalise(e.tokens[j]) for j in idx) if t in items]
            scores.append(0.5 + 0.5 * min(1.0, max(found)) if found else 0.0)
        return Classification(scores)


# --------------------------------------------------------------------------------------------------
# scorers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    metrics: BinaryMetrics
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Scorer(ABC):
    name: str = "scorer"

    @abstractmethod
    def score(self, explanation: Explanation, examples: LatentExamples) -> Score: ...


class DetectionScorer(Scorer):
    name = "detection"

    def __init__(self, classifier: Classifier):
        self.classifier = classifier

    def score(self, explanation, examples):
        items = list(examples.test_active) + list(examples.test_inactive)
        labels = [True] * len(examples.test_active) + [False] * len(examples.test_inactive)
        c = self.classifier.classify(explanation, items)
        return Score(binary_metrics(labels, c.scores), c.prompt_tokens, c.completion_tokens, c.seconds)


class FuzzingScorer(Scorer):
    """Held-out activating contexts, each shown twice: active tokens highlighted (correct) and as many random
    inactive-or-not tokens highlighted (incorrect; seeded by latent and `seed`)."""

    name = "fuzzing"

    def __init__(self, classifier: Classifier, seed: int = 0):
        self.classifier, self.seed = classifier, seed

    def score(self, explanation, examples):
        rng = random.Random(self.seed * 1_000_003 + examples.latent)
        items, marks, labels = [], [], []
        for e in examples.test_active:
            true = [i for i, a in enumerate(e.acts) if a > 0] or [e.centre]
            others = [i for i in range(len(e.tokens)) if i not in true] or list(range(len(e.tokens)))
            wrong = sorted(rng.sample(others, min(len(true), len(others))))
            items += [e, e]
            marks += [true, wrong]
            labels += [True, False]
        c = self.classifier.classify(explanation, items, marks)
        return Score(binary_metrics(labels, c.scores), c.prompt_tokens, c.completion_tokens, c.seconds)


Embed = Callable[[list[str]], np.ndarray]
"""Texts -> [n, dim] embeddings (e.g. `sentence_transformer(path)`)."""


def sentence_transformer(model_path: str) -> Embed:
    """An Embed from a local sentence-transformers folder (the project's MiniLM asset)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")
    return lambda texts: np.asarray(model.encode(list(texts), batch_size=64, convert_to_numpy=True))


class EmbeddingScorer(Scorer):
    """AUROC of cos(explanation, context) for held-out activating vs non-activating contexts."""

    name = "embedding"

    def __init__(self, embed: Embed):
        self.embed = embed

    def score(self, explanation, examples):
        items = list(examples.test_active) + list(examples.test_inactive)
        labels = [True] * len(examples.test_active) + [False] * len(examples.test_inactive)
        if not items:
            return Score(binary_metrics([], [], None))
        v = np.asarray(self.embed([explanation.text] + [e.text for e in items]), dtype=float)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return Score(binary_metrics(labels, v[1:] @ v[0], threshold=None))


# --------------------------------------------------------------------------------------------------
# scoring many latents, with the shuffled control
# --------------------------------------------------------------------------------------------------


def derangement(keys: Sequence[int], seed: int) -> dict[int, int]:
    """Map each key to another key (a seeded random cyclic shift of a shuffled order; identity for one
    key)."""
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    return {k: order[(i + 1) % len(order)] for i, k in enumerate(order)}


@dataclass(frozen=True)
class ScoreRow:
    """One row of autointerp.csv."""

    latent: int
    explainer: str
    scorer: str
    explanation: str
    balanced_accuracy: float
    f1: float
    auroc: float
    control_balanced_accuracy: float
    control_f1: float
    control_auroc: float
    control_latent: int
    """Whose explanation the control used."""
    n_active: int
    n_inactive: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float


def score_latents(
    explanations: Mapping[int, Explanation],
    examples: Mapping[int, LatentExamples],
    scorer: Scorer,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Score each latent's explanation and, as control, another latent's explanation on the same examples."""
    control = derangement(list(explanations), seed)
    rows = []
    for latent in sorted(explanations):
        ex, real = examples[latent], explanations[latent]
        s = scorer.score(real, ex)
        c = scorer.score(explanations[control[latent]], ex)
        rows.append(
            ScoreRow(
                latent,
                real.explainer,
                scorer.name,
                real.text,
                s.metrics.balanced_accuracy,
                s.metrics.f1,
                s.metrics.auroc,
                c.metrics.balanced_accuracy,
                c.metrics.f1,
                c.metrics.auroc,
                control[latent],
                s.metrics.n_pos,
                s.metrics.n_neg,
                s.prompt_tokens + c.prompt_tokens,
                s.completion_tokens + c.completion_tokens,
                round(s.seconds + c.seconds, 3),
            )
        )
    return pd.DataFrame([asdict(r) for r in rows], columns=[f for f in ScoreRow.__dataclass_fields__])


def summarise_scores(scores: pd.DataFrame, threshold: float = 0.8) -> pd.DataFrame:
    """Per scorer: mean metric and control, and the share of latents whose metric (AUROC for embedding,
    balanced accuracy otherwise) reaches `threshold`."""
    out = []
    for scorer, g in scores.groupby("scorer", sort=True):
        metric = "auroc" if scorer == "embedding" else "balanced_accuracy"
        vals, ctrl = g[metric].astype(float), g[f"control_{metric}"].astype(float)
        out.append(
            {
                "scorer": scorer,
                "metric": metric,
                "n_latents": len(g),
                "mean": vals.mean(),
                "control_mean": ctrl.mean(),
                f"share_ge_{threshold}": float((vals >= threshold).mean()),
                f"control_share_ge_{threshold}": float((ctrl >= threshold).mean()),
            }
        )
    return pd.DataFrame(out)


def concept_auroc(latent_acts: np.ndarray, labels: np.ndarray, concepts: Sequence[str]) -> pd.DataFrame:
    """For each concept (column of binary `labels` [n, c]) the latent (column of `latent_acts` [n, m]) with
    the highest AUROC, vectorised over latents with average ranks (Mann-Whitney)."""
    x = np.asarray(latent_acts, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if x.shape[0] != y.shape[0] or y.shape[1] != len(concepts):
        raise DataError(
            f"concept AUROC: {x.shape[0]} rows of activations, labels {y.shape}, {len(concepts)} names"
        )
    ranks = pd.DataFrame(x).rank(method="average").to_numpy()
    rows = []
    for c, name in enumerate(concepts):
        pos = y[:, c]
        p, n = int(pos.sum()), int((~pos).sum())
        if p == 0 or n == 0:
            rows.append({"concept": name, "best_latent": -1, "auroc": math.nan, "n_pos": p, "n_neg": n})
            continue
        a = (ranks[pos].sum(0) - p * (p + 1) / 2) / (p * n)
        best = int(np.argmax(a))
        rows.append({"concept": name, "best_latent": best, "auroc": float(a[best]), "n_pos": p, "n_neg": n})
    return pd.DataFrame(rows)
