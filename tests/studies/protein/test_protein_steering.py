"""Steering hook (error term kept, clamping), controls, generation and the scoring of generated proteins."""

import numpy as np
import pytest
import torch

from saeflow.errors import ConfigError, DataError
from saeflow.models.unirep import MLSTMNet, UniRepModel
from saeflow.sae import make_sae
from saeflow.studies.protein.concepts import ConceptLabels, concept_scores
from saeflow.studies.protein.data import ProteinRecord
from saeflow.studies.protein.oracle import (
    SecondaryStructureOracle,
    composition,
    composition_kl,
    identity,
    longest_homopolymer,
    low_complexity_share,
    mean_pairwise_identity,
    motif_rate,
)
from saeflow.studies.protein.steering import (
    SteeringSpec,
    difference_of_means,
    direction_fn,
    generate_unirep,
    matched_random_latents,
    modify_latents,
    sae_steering_fn,
    score_generations,
    shortlist,
)


def tiny_sae(d=6, m=12, scale=2.0):
    sae = make_sae({"architecture": "relu", "d_in": d, "d_sae": m}, seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(0.1)
        sae.b_dec.normal_(generator=torch.Generator().manual_seed(1))
    sae.set_input_scale_(scale)  # the hook must work in the model's raw scale
    return sae


def tiny_unirep(seed=0):
    torch.manual_seed(seed)
    return UniRepModel(MLSTMNet(d=6, n_cells=2))


def test_strength_zero_keeps_the_state_and_the_error_term():
    sae = tiny_sae()
    x = torch.randn(3, 5, 6)
    max_act = torch.ones(12)
    same = sae_steering_fn(sae, SteeringSpec((1, 4), "amplify", 0.0), max_act)(x)
    torch.testing.assert_close(same, x, atol=1e-6, rtol=0)
    # with a real edit, the change is exactly decode(f') - decode(f): the error x - x_hat is untouched
    spec = SteeringSpec((1, 4), "clamp", 3.0)
    out = sae_steering_fn(sae, spec, max_act)(x)
    c = sae.input_scale
    f = sae.encode(x * c)
    expected = x + (sae.decode(modify_latents(f, spec, max_act)) - sae.decode(f)) / c
    torch.testing.assert_close(out, expected.detach(), atol=1e-5, rtol=0)
    assert not torch.allclose(out, x)


def test_clamping_sets_and_amplifying_raises_the_latents():
    f = torch.tensor([[0.0, 1.0, 2.0], [0.5, 0.0, 0.0]])
    max_act = torch.tensor([1.0, 2.0, 4.0])
    clamped = modify_latents(f, SteeringSpec((0, 2), "clamp", 0.5), max_act)
    assert clamped.tolist() == [[0.5, 1.0, 2.0], [0.5, 0.0, 2.0]]
    raised = modify_latents(f, SteeringSpec((1,), "amplify", 1.5), max_act)
    assert raised.tolist() == [[0.0, 4.0, 2.0], [0.5, 3.0, 0.0]]
    assert modify_latents(f, SteeringSpec(()), max_act).tolist() == f.tolist()
    with pytest.raises(ConfigError, match="steering.mode"):
        SteeringSpec((0,), "scale", 1.0)


def test_generation_is_seeded_and_unsteered_at_strength_zero():
    model = tiny_unirep()
    sae = tiny_sae()
    plain = generate_unirep(model, n=3, length=12, seed=5)
    assert plain == generate_unirep(model, n=3, length=12, seed=5)
    assert all(len(s) == 12 and set(s) <= set("ACDEFGHIKLMNPQRSTVWY") for s in plain)
    zero = sae_steering_fn(sae, SteeringSpec((0, 1), "amplify", 0.0), torch.ones(12))
    assert generate_unirep(model, n=3, length=12, seed=5, layer=0, fn=zero) == plain
    strong = sae_steering_fn(sae, SteeringSpec(tuple(range(12)), "clamp", 50.0), torch.ones(12))
    assert generate_unirep(model, n=3, length=12, seed=5, layer=0, fn=strong) != plain


def test_controls_and_shortlist():
    freq = np.array([0.1, 0.11, 0.5, 0.09, 0.52, 0.3])
    picks = matched_random_latents(freq, [0, 2], seed=0, pool=2)
    assert picks[0] in (1, 3) and picks[1] in (4, 5) and not set(picks) & {0, 2}
    acts = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(
        difference_of_means(acts, np.array([True, True, False])), torch.tensor([2.0, -2.0])
    )
    fn = direction_fn(torch.tensor([3.0, 4.0]), strength=2.0, norm=5.0)
    torch.testing.assert_close(fn(torch.zeros(1, 2)), torch.tensor([[6.0, 8.0]]))
    labels = ConceptLabels.build([ProteinRecord("a", "AAAA", "HHCC")], names=["helix", "coil"])
    latents = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    scores = concept_scores(latents, labels, torch.ones(3), thresholds=(0.0,))
    assert shortlist(scores, "helix", 2) == (1, 2) and shortlist(scores, "coil", 1) == (0,)


def test_sequence_metrics_by_hand():
    assert identity("AAAA", "AABB") == 0.5 and identity("AAAA", "AA") == 1.0
    assert mean_pairwise_identity(["AAAA", "AABB", "BBBB"]) == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert longest_homopolymer("ABBBCC") == 3
    assert low_complexity_share("A" * 20) == 1.0 and low_complexity_share("ACDEFGHIKLMNPQRSTVWY") == 0.0
    natural = composition(["ACDEFGHIKLMNPQRSTVWY"])
    assert composition_kl(["ACDEFGHIKLMNPQRSTVWY" * 2], natural) == pytest.approx(0.0, abs=1e-9)
    assert composition_kl(["AAAA"], natural) > 2.5  # ≈ log 20 = 3.0 nats
    assert motif_rate(["MACDEFGKSW", "GGGG"], "[AG]-x(4)-G-K-[ST]") == 0.5  # A CDEF G K S


def test_oracle_and_trial_scores():
    rng = np.random.default_rng(0)

    def chain(i):
        parts = [
            (rng.choice(list("AELK"), 12), "H"),
            (rng.choice(list("VIYT"), 8), "E"),
            (rng.choice(list("GPND"), 6), "C"),
        ]
        order = rng.permutation(3)
        return ProteinRecord(
            f"c{i}",
            "".join("".join(parts[j][0]) for j in order),
            "".join(parts[j][1] * len(parts[j][0]) for j in order),
        )

    oracle = SecondaryStructureOracle.fit([chain(i) for i in range(40)], [chain(i) for i in range(40, 50)])
    assert oracle.accuracy > 0.8
    assert oracle.helix_fraction("AELKAELKAELKAELKAELK") > 0.8 and oracle.helix_fraction("VIYTVIYTVIYT") < 0.3
    # stored as plain JSON (no pickle) and read back to the same predictions
    import json

    again = SecondaryStructureOracle.from_dict(json.loads(json.dumps(oracle.to_dict())))
    assert again.predict("AELKVIYTGPNDAELK") == oracle.predict("AELKVIYTGPNDAELK")
    with pytest.raises(DataError, match="oracle file is malformed"):
        SecondaryStructureOracle.from_dict({"half": 7})
    model = tiny_unirep()
    seqs = generate_unirep(model, n=4, length=15, seed=0)
    scores = score_generations(
        seqs,
        model=model,
        oracle=oracle,
        background=np.full(20, 0.05),
        motif="C-x(2,4)-C-x(3)-[LIVMFYWC]-x(8)-H-x(3,5)-H",
    )
    assert 0 <= scores.helix_fraction <= 1 and scores.motif_rate == 0.0
    assert scores.log_likelihood < 0 and scores.composition_kl >= 0 and 0 <= scores.pairwise_identity <= 1
