"""saeflow.studies.recsys.dictionary: decile levels, RecSAE's sampling and confidence formula, TF-IDF
explainer."""

from __future__ import annotations

import pytest
import torch

from saeflow.studies.recsys.dictionary import (
    DictionaryConfig,
    Explainer,
    ExplainerOutput,
    TfidfExplainer,
    build_dictionary,
    confidence_scores,
    quantise_levels,
    sample_sequences,
)


def test_decile_levels():
    # unit 0: positive values 1..10 → deciles at 1.9, 2.8, …, 9.1 → levels 1..10; zeros and negatives → 0
    # unit 1: never active → all 0
    a = torch.tensor([[float(v), -1.0] for v in range(1, 11)] + [[0.0, 0.0], [-3.0, 0.0]])
    lv = quantise_levels(a)
    assert lv[:, 0].tolist() == list(range(1, 11)) + [0, 0]
    assert (lv[:, 1] == 0).all()


def test_confidence_formula():
    # unit 0: 4 of 5 held-out predicted active, 1 of 5 random predicted active (4 inactive) → (4 + 4) / 10
    # unit 1: all held-out active, no random active → 1.0; unit 2: nothing right → 0
    held = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    rand = torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    s = confidence_scores(held, rand)
    assert s.confidence.tolist() == pytest.approx([0.8, 1.0, 0.0])
    assert s.recall.tolist() == pytest.approx([0.8, 1.0, 0.0])
    assert s.precision.tolist() == pytest.approx([0.8, 1.0, 0.0])


def acts_fixture():
    # 30 sequences, 2 units. Unit 0 is active on sequences 0..14 with value 15 - i (descending); unit 1 on 3
    # only.
    a = torch.zeros(30, 2)
    a[:15, 0] = torch.arange(15, 0, -1).float()
    a[:3, 1] = 1.0
    return a


def test_sampling():
    s = sample_sequences(acts_fixture(), DictionaryConfig(seed=1))
    # levels >= 5 of unit 0: values above its 40% quantile (6.6) → 9 sequences (values 7..15): too few for 10
    assert s.n_candidates.tolist()[0] == 9 and not s.sampled.tolist()[0]
    a = acts_fixture()
    a[:25, 0] = torch.arange(25, 0, -1).float()
    s = sample_sequences(a, DictionaryConfig(seed=1))
    assert s.sampled.tolist() == [True, False]
    assert s.explain[0].tolist() == [0, 2, 4, 6, 8] and s.heldout[0].tolist() == [1, 3, 5, 7, 9]
    assert all(int(r) >= 25 for r in s.random[0])  # inactive sequences only
    assert s.frequency.tolist() == pytest.approx([25 / 30, 3 / 30])


class OracleExplainer(Explainer):
    """Predicts active exactly for sequences below 20 (the active ones in the test below)."""

    name = "oracle"

    def explain_and_predict(self, explain, test):
        return ExplainerOutput([("x",)] * len(explain), test < 20)


def test_build_dictionary_and_tfidf():
    a = torch.zeros(40, 1)
    a[:20, 0] = torch.arange(20, 0, -1).float()
    res = build_dictionary(a, OracleExplainer())
    assert res.table["confidence"].tolist() == [1.0]
    # TF-IDF: active sequences are about horror, the others about comedy
    docs = [["genre:Horror", "decade:1980s"]] * 20 + [["genre:Comedy", "decade:1990s"]] * 20
    res = build_dictionary(a, TfidfExplainer(docs))
    row = res.table.iloc[0]
    assert set(row["concept"].split()) == {"genre:Horror", "decade:1980s"} and row["genre"] == "Horror"
    # identical docs: every held-out sequence scores the threshold → predicted active; random ones score 0
    assert row["recall"] == 1.0 and row["precision"] == 1.0 and row["confidence"] == 1.0
    docs = [["genre:Horror", "decade:1980s", f"word:w{i}"] for i in range(20)] + [["genre:Comedy"]] * 20
    row = build_dictionary(a, TfidfExplainer(docs)).table.iloc[0]
    assert row["precision"] == 1.0 and 0.0 <= row["recall"] <= 1.0
