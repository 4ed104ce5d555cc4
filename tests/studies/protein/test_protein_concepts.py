"""Concept labels and latent × concept association on hand-made examples with hand-worked answers."""

import numpy as np
import pytest
import torch
from scipy.stats import fisher_exact

from saeflow.errors import DataError
from saeflow.studies.protein.concepts import (
    PROSITE,
    ConceptLabels,
    annotate_sequence,
    benjamini_hochberg,
    best_per_concept,
    concept_scores,
    fisher_greater,
    hydropathy_tm,
    latent_table,
    motif_mask,
    prosite_to_regex,
    residue_concepts,
)
from saeflow.studies.protein.data import ProteinRecord


def test_fisher_one_sided_by_hand():
    # 8 residues, 4 in the concept, latent active on 3, all 3 in the concept:
    # P(X >= 3) = P(X = 3) = C(4,3) C(4,0) / C(8,3) = 4 / 56
    assert fisher_greater(3, 3, 4, 8) == pytest.approx(4 / 56)
    # tp = 2: P(X >= 2) = [C(4,2) C(4,1) + C(4,3)] / 56 = (24 + 4) / 56 = 0.5
    assert fisher_greater(2, 3, 4, 8) == pytest.approx(0.5)
    assert fisher_greater(2, 3, 4, 8) == pytest.approx(
        fisher_exact([[2, 1], [2, 3]], alternative="greater")[1]
    )


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> p*m/rank = 0.04, 0.06, 0.0533, 0.5 -> running min from the top
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def helix_labels(*tracks):
    return ConceptLabels.build(
        [ProteinRecord(f"r{i}", "A" * len(t), t) for i, t in enumerate(tracks)], names=["helix"]
    )


def test_domains_are_runs_that_never_cross_records():
    labels = helix_labels("CCHH", "HHCC", "HCHC")
    assert labels.n_domains.tolist() == [4]
    assert labels.domain[:, 0].tolist() == [-1, -1, 0, 0, 1, 1, -1, -1, 2, -1, 3, -1]


def test_interplm_precision_recall_f1_by_hand():
    # record A: helix runs at 0-1 and 5-6; record B: helix run 1-3  -> 3 domains
    labels = helix_labels("HHCCCHHC", "CHHH")
    acts = torch.zeros(12, 2)
    acts[0, 0], acts[2, 0], acts[8 + 2, 0] = 1.0, 0.3, 0.7  # latent 0: A0 (helix), A2 (coil), B2 (helix)
    acts[:, 1] = 2.0  # latent 1: always on (scale 2)
    scores = concept_scores(
        acts, labels, scale=torch.tensor([1.0, 2.0]), thresholds=(0.0, 0.5, 0.8), chunk_rows=5
    )
    # threshold 0: active A0, A2, B2 -> precision 2/3; domains hit 1 and 3 of 3 -> recall 2/3; F1 2/3
    # threshold .5: A0, B2 -> precision 1, recall 2/3, F1 0.8;
    # threshold .8: A0 -> precision 1, recall 1/3, F1 .5
    np.testing.assert_allclose(scores.precision[:, 0, 0], [2 / 3, 1, 1])
    np.testing.assert_allclose(scores.recall[:, 0, 0], [2 / 3, 2 / 3, 1 / 3])
    np.testing.assert_allclose(scores.f1[:, 0, 0], [2 / 3, 0.8, 0.5])
    # latent 1 (normalised value 1 everywhere): precision 7/12, recall 1 -> F1 = 2 * 7/12 / (7/12 + 1) = 14/19
    np.testing.assert_allclose(scores.f1[:, 1, 0], [14 / 19] * 3)
    assert scores.tp[:, 0, 0].tolist() == [2, 2, 1] and scores.n_active[:, 0].tolist() == [3, 2, 1]
    best = best_per_concept(scores, scores)
    assert best.loc[0, "latent"] == 0 and best.loc[0, "threshold"] == 0.5 and best.loc[0, "covered"]
    table = latent_table(scores, scores)
    assert table.loc[0, "threshold"] == 0.5 and table.loc[0, "val_f1"] == pytest.approx(0.8)
    assert table.loc[0, "frequency"] == pytest.approx(2 / 12)
    ann = annotate_sequence("AAAA", acts[8:], torch.tensor([1.0, 2.0]), table, min_f1=0.75)
    assert ann["latents"].tolist() == ["1", "1", "1 0", "1"]  # by normalised value: 1.0, then 0.7
    assert ann.loc[2, "concepts"] == "helix" and ann.loc[0, "concepts"] == ""


def test_vectorised_counts_match_a_loop():
    rng = np.random.default_rng(0)
    tracks = ["".join(rng.choice(list("HEC"), size=n)) for n in (7, 11, 5)]
    labels = ConceptLabels.build(
        [ProteinRecord(f"r{i}", "A" * len(t), t) for i, t in enumerate(tracks)],
        names=["helix", "strand", "coil"],
    )
    acts = torch.relu(torch.randn(len(labels), 6))
    scale = acts.max(dim=0).values
    scores = concept_scores(acts, labels, scale, thresholds=(0.15, 0.6), chunk_rows=8)
    for t, thr in enumerate((0.15, 0.6)):
        for latent in range(6):
            active = (acts[:, latent] / scale[latent] > thr).numpy()
            for c in range(3):
                present = labels.present[:, c]
                doms = set(labels.domain[active & present, c])
                assert scores.tp[t, latent, c] == (active & present).sum()
                assert scores.domains_hit[t, latent, c] == len(doms)
    q = scores.fisher_q()
    assert q.shape == (2, 6, 3) and (q >= scores.fisher_p() - 1e-12).all()


def test_sequence_concepts():
    assert prosite_to_regex(PROSITE["zinc_finger_c2h2"]) == "C.{2,4}C.{3}[LIVMFYWC].{8}H.{3,5}H"
    assert prosite_to_regex("<M-{P}-[ST>]") == "^M[^P][ST]"
    zf = "AA" + "CAAC" + "AAA" + "L" + "A" * 8 + "H" + "AAA" + "H" + "AA"
    assert motif_mask(zf, PROSITE["zinc_finger_c2h2"]).nonzero()[0].tolist() == list(range(2, len(zf) - 2))
    assert hydropathy_tm("I" * 19).all() and not hydropathy_tm("I" * 18).any()
    # K = -3.9, I = 4.5: a window of 19 reaches mean 1.6 with >= 13 I (8.4 i >= 104.5), so in K10 I19 K10 the
    # windows starting at 4..16 qualify and cover residues 4..34
    assert hydropathy_tm("K" * 10 + "I" * 19 + "K" * 10).nonzero()[0].tolist() == list(range(4, 35))
    concepts = residue_concepts(ProteinRecord("x", "AAAAAAA", "CCHHHCC"))
    assert concepts["helix_ncap"].nonzero()[0].tolist() == [1]
    assert concepts["helix_ccap"].nonzero()[0].tolist() == [5]
    with pytest.raises(DataError, match="cannot parse"):
        prosite_to_regex("C-x(2")
    with pytest.raises(DataError, match="not defined for every record"):
        ConceptLabels.build([ProteinRecord("x", "AAA")], names=["helix"])
