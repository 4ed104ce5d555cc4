"""saeflow.absorption: the first-letter absorption metric on hand-made SAEs."""

import math

import numpy as np
import pytest
import torch

from saeflow.absorption import AbsorptionSettings, absorption_score, first_letter, first_letters
from saeflow.errors import ConfigError, DataError

E = torch.eye(3, dtype=torch.float64)


def _sae():
    """Three latents in d = 3: 0 = the 'a' latent (e0), 1 = an absorber (decoder (e0 + e1)/√2, cos 0.707 with
    e0; encoder e1 so it is not picked as the main latent), 2 = the 'b' latent (e2)."""
    W_enc = torch.stack([E[0], E[1], E[2]], dim=1)  # [d, m]
    W_dec = torch.stack([E[0], (E[0] + E[1]) / math.sqrt(2), E[2]])  # [m, d]
    return W_enc, W_dec


# probe "starts with a" = e0 with bias −0.5; "starts with b" = e2 with bias −0.5
PROBES = {"a": (np.array([1.0, 0.0, 0.0]), -0.5), "b": (np.array([0.0, 0.0, 1.0]), -0.5)}


def test_first_letter():
    assert first_letters([" The", "Ġcat", "▁Zebra", "ing", " 42", ",", "Ġé", "", " x1"]) == [
        "t",
        "c",
        "z",
        "i",
        None,
        None,
        None,
        None,
        None,
    ]
    assert first_letter("\nhello") == "h"


def test_hand_computed_absorption():
    W_enc, W_dec = _sae()
    x = torch.tensor(
        [
            [1, 0, 0],
            [1, 1, 0],
            [1, 0, 0],
            [1, 1, 0],
            [-1, 0, 0],  # 'a' tokens
            [0, 0, 1],
            [0, 0, 1],  # 'b' tokens
            [5, 5, 5],
        ],
        dtype=torch.float64,
    )  # not a letter token
    f = torch.tensor(
        [
            [1, 0, 0],  # a: main fires -> not absorbed
            [0, 1, 0],  # a: main off, absorber fires, 1·0.707 ≥ 0.4·(x·e0) = 0.4 -> absorbed
            [0, 0, 1],  # a: main off, only the unrelated latent fires -> not absorbed
            [1, 1, 0],  # a: main fires -> not absorbed
            [0, 1, 0],  # a: probe says no (1·(−1) − 0.5 < 0) -> not counted
            [0, 0, 1],
            [0, 0, 1],  # b: main (latent 2) fires
            [1, 1, 1],
        ],
        dtype=torch.float64,
    )
    letters = ["a"] * 5 + ["b"] * 2 + [None]
    r = absorption_score(x, letters, f, W_enc, W_dec, probes=PROBES)
    assert r.main_latents == {"a": [0], "b": [2]}
    assert r.n_correct == {"a": 4, "b": 2} and r.n_absorbed == {"a": 1, "b": 0}
    assert r.per_letter == {"a": 0.25, "b": 0.0}
    assert r.absorption == pytest.approx(0.125)  # mean of 1/4 and 0
    assert r.absorption_pooled == pytest.approx(1 / 6)
    assert r.n_letter_tokens == 7


def test_absorber_needs_meaningful_projection_and_alignment():
    W_enc, W_dec = _sae()
    x = torch.tensor([[1, 1, 0], [1, 1, 0]], dtype=torch.float64)
    f = torch.tensor([[0, 0.1, 0], [0, 1, 0]], dtype=torch.float64)
    # token 1: 0.1·0.707 = 0.07 < 0.4·(x·e0) = 0.4 -> not absorbed; token 2: 0.707 ≥ 0.4 -> absorbed
    r = absorption_score(x, ["a", "a"], f, W_enc, W_dec, probes={"a": PROBES["a"]})
    assert r.per_letter == {"a": 0.5}
    # a cosine threshold above 0.707 leaves no absorbing latent
    s = AbsorptionSettings(cos_threshold=0.8)
    r = absorption_score(x, ["a", "a"], f, W_enc, W_dec, s, probes={"a": PROBES["a"]})
    assert r.absorption == 0.0


def test_no_absorption_when_main_latents_always_fire():
    W_enc, W_dec = _sae()
    x = torch.tensor([[1, 0, 0]] * 3 + [[0, 0, 1]] * 3, dtype=torch.float64)
    f = torch.tensor([[2, 1, 0]] * 3 + [[0, 1, 1]] * 3, dtype=torch.float64)
    r = absorption_score(x, ["a"] * 3 + ["b"] * 3, f, W_enc, W_dec, probes=PROBES)
    assert r.absorption == 0.0 and r.absorption_pooled == 0.0


def test_fitted_probes_find_letter_latents():
    """Letter tokens = letter direction + noise; the SAE has one latent per letter direction and on half of
    the 'a' tokens a second latent (encoder elsewhere, decoder along 'a') fires instead of the 'a' latent."""
    gen = torch.Generator().manual_seed(0)
    d, per = 8, 60
    dirs = torch.eye(d, dtype=torch.float64)[:3]  # a, b, c
    labels = [c for c in "abc" for _ in range(per)]
    x = torch.cat(
        [dirs[i] * 3 + 0.3 * torch.randn(per, d, generator=gen, dtype=torch.float64) for i in range(3)]
    )
    W_dec = torch.cat([dirs, _unit_rows(dirs[0] + torch.eye(d, dtype=torch.float64)[5])[None]])
    W_enc = torch.cat([dirs, torch.eye(d, dtype=torch.float64)[6:7]]).T
    f = torch.zeros(3 * per, 4, dtype=torch.float64)
    for i in range(3):
        f[i * per : (i + 1) * per, i] = 1.0
    f[: per // 2, 0], f[: per // 2, 3] = 0.0, 4.0  # half of the 'a' tokens: absorbed by latent 3
    r = absorption_score(x, labels, f, W_enc, W_dec, AbsorptionSettings(seed=1))
    assert r.main_latents == {"a": [0], "b": [1], "c": [2]}
    assert r.per_letter["b"] == 0.0 and r.per_letter["c"] == 0.0
    assert 0.2 < r.per_letter["a"] < 0.8  # ≈ 1/2 of the 'a' test tokens


def _unit_rows(v):
    return v / v.norm()


def test_errors():
    W_enc, W_dec = _sae()
    with pytest.raises(DataError, match="no token starts with a letter"):
        absorption_score(torch.zeros(2, 3), [None, None], torch.zeros(2, 3), W_enc, W_dec)
    with pytest.raises(ConfigError, match="unknown key"):
        AbsorptionSettings.from_dict({"treshold": 0.1})
    with pytest.raises(ConfigError, match="direction"):
        AbsorptionSettings.from_dict({"direction": "both"})


def test_negative_probe_projection_and_summed_absorbers():
    W_enc, W_dec = _sae()
    # the probe (bias +2) accepts x = [−0.5, 1, 0], but x·e0 < 0: SAEBench counts no absorption then
    r = absorption_score(
        torch.tensor([[-0.5, 1.0, 0.0]] * 2, dtype=torch.float64),
        ["a", "a"],
        torch.tensor([[0, 1, 0]] * 2, dtype=torch.float64),
        W_enc,
        W_dec,
        probes={"a": (np.array([1.0, 0.0, 0.0]), 2.0)},
    )
    assert r.n_correct == {"a": 2} and r.absorption == 0.0
    # two weak absorbers (0.3·0.707 = 0.21 each) pass 0.4·(x·e0) = 0.4 only when both count
    W_dec2 = torch.cat([W_dec, W_dec[1:2]])
    W_enc2 = torch.cat([W_enc, E[1:2].T], dim=1)
    x = torch.tensor([[1.0, 1.0, 0.0]] * 2, dtype=torch.float64)
    f = torch.tensor([[0, 0.3, 0, 0.3]] * 2, dtype=torch.float64)
    one = absorption_score(x, ["a", "a"], f, W_enc2, W_dec2, probes={"a": PROBES["a"]})
    two = absorption_score(
        x, ["a", "a"], f, W_enc2, W_dec2, AbsorptionSettings(max_absorbers=2), probes={"a": PROBES["a"]}
    )
    assert one.absorption == 0.0 and two.absorption == 1.0
