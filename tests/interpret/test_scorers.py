"""Explainers and scorers on hand-made examples: a perfect explanation scores 1, a shuffled one ≈ 0.5."""

import math

import numpy as np
import pytest

from saeflow.interpret.examples import Example, LatentExamples
from saeflow.interpret.explainers import Explanation, TokenPatternExplainer
from saeflow.interpret.scorers import (
    DetectionScorer,
    EmbeddingScorer,
    FuzzingScorer,
    RuleClassifier,
    auroc,
    binary_metrics,
    concept_auroc,
    derangement,
    score_latents,
    summarise_scores,
)


def test_hand_computed_metrics():
    # labels 1 1 0 0, scores .9 .4 .6 .1 -> at 0.5: TP=1 FN=1 FP=1 TN=1
    # balanced accuracy = (1/2 + 1/2)/2 = 0.5; F1 = 2·1/(2·1+1+1) = 0.5
    # AUROC: pairs (pos, neg): (.9,.6)>,(.9,.1)>,(.4,.6)<,(.4,.1)> -> 3/4
    m = binary_metrics([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1])
    assert m.balanced_accuracy == 0.5 and m.f1 == 0.5 and m.auroc == 0.75
    # ties count one half: (.5 vs .5) -> 0.5
    assert auroc([1, 0], [0.5, 0.5]) == 0.5
    # 3 pos 1 neg, all predicted positive: TPR 1, TNR 0 -> bacc .5; F1 = 6/(6+1) ; AUROC nan-free
    m = binary_metrics([1, 1, 1, 0], [1, 1, 1, 1])
    assert m.balanced_accuracy == 0.5 and m.f1 == pytest.approx(6 / 7) and m.auroc == 0.5
    assert math.isnan(auroc([1, 1], [0.1, 0.2]))


def _ex(words, active_at=None, centre=2, space=False):
    words = [" " + w for w in words] if space else words
    acts = tuple(1.0 if i == active_at else 0.0 for i in range(len(words)))
    return Example(tuple(words), acts, centre, active_at is not None)


def _latent(latent: int, word: str, n=10, space=False):
    """Latent `latent` fires on `word`; other windows hold filler words only."""
    filler = [f"f{i}" for i in range(20)]
    act = tuple(
        _ex([filler[i % 20], filler[(i + 3) % 20], word, filler[(i + 5) % 20]], 2, space=space)
        for i in range(n)
    )
    ina = tuple(
        _ex([filler[(i + 7) % 20], filler[(i + 1) % 20], filler[(i + 9) % 20]], space=space) for i in range(n)
    )
    return LatentExamples(latent, act, ina, act, ina)


def test_perfect_explanation_scores_one_and_shuffled_half():
    words = [f"w{i}" for i in range(12)]
    examples = {i: _latent(i, w) for i, w in enumerate(words)}
    explainer = TokenPatternExplainer()
    expl = {i: explainer.explain(ex) for i, ex in examples.items()}
    assert expl[3].pattern["tokens"][0][0] == "w3" and '"w3"' in expl[3].text
    det = score_latents(expl, examples, DetectionScorer(RuleClassifier()), seed=1)
    assert (det.balanced_accuracy == 1).all() and (det.f1 == 1).all() and (det.auroc == 1).all()
    # another latent's word never appears: every context predicted inactive -> bacc 0.5, AUROC 0.5, F1 0
    assert (det.control_balanced_accuracy == 0.5).all() and (det.control_auroc == 0.5).all()
    assert (det.control_latent != det.latent).all()
    fuzz = score_latents(expl, examples, FuzzingScorer(RuleClassifier()), seed=1)
    assert (fuzz.balanced_accuracy == 1).all() and (fuzz.control_balanced_accuracy == 0.5).all()
    summary = summarise_scores(det)
    assert summary.loc[0, "share_ge_0.8"] == 1.0 and summary.loc[0, "control_share_ge_0.8"] == 0.0


def test_embedding_scorer_with_stand_in_embedder():
    vocab = [f"w{i}" for i in range(12)] + [f"f{i}" for i in range(20)]

    def embed(texts):  # bag of words over a known vocabulary
        return np.array([[t.split().count(w) for w in vocab] for t in texts], dtype=float)

    examples = {i: _latent(i, f"w{i}", space=True) for i in range(12)}
    expl = {i: Explanation(i, f"w{i}", "hand") for i in range(12)}
    res = score_latents(expl, examples, EmbeddingScorer(embed), seed=0)
    assert (res.auroc == 1).all() and (res.control_auroc == 0.5).all()
    assert res.balanced_accuracy.isna().all()


def test_derangement_and_quoted_tokens():
    d = derangement(list(range(7)), seed=3)
    assert sorted(d.values()) == list(range(7)) and all(k != v for k, v in d.items())
    ex = _latent(0, "w0")
    s = DetectionScorer(RuleClassifier()).score(Explanation(0, 'fires on "W0"', "llm"), ex)
    assert s.metrics.balanced_accuracy == 1


def test_concept_auroc():
    # concept A = rows 0,1; latent 1 ranks them first (AUROC 1), latent 0 is reversed (0)
    acts = np.array([[0.0, 3.0], [0.1, 2.0], [0.5, 0.0], [0.9, 1.0]])
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=bool)
    # concept B = rows 1,3: latent0 scores .1,.9 vs .0,.5 -> pairs (.1>.0),(.1<.5),(.9>.0),(.9>.5) = 3/4;
    # latent1 scores 2,1 vs 3,0 -> (2<3),(2>0),(1<3),(1>0) = 2/4 -> best latent 0 with 0.75
    res = concept_auroc(acts, labels, ["A", "B"])
    assert res.best_latent.tolist() == [1, 0] and res.auroc.tolist() == [1.0, 0.75]
