"""saeflow.absorption_icl: SAEBench's first-letter absorption on hand-made SAEs and letter sets."""

import math

import numpy as np
import pytest
import torch

from saeflow.absorption_icl import (
    IclAbsorptionSettings,
    LetterSet,
    icl_absorption_score,
    icl_context,
    k_sparse_probes,
    word_residuals,
)
from saeflow.errors import ConfigError

E = torch.eye(4, dtype=torch.float64)
S = IclAbsorptionSettings(min_letters=1)
# W_dec: 0 = the 'a' latent (e0); 1 = an absorber (e0 + e1)/√2, cos 0.707 with the 'a' probe; 2 = the 'b'
# latent (e2); 3 = a weakly aligned latent, cos 0.05 with e0: above full absorption's 0.025, below the
# fraction's 0.1.
W_DEC = torch.stack([E[0], (E[0] + E[1]) / math.sqrt(2), E[2], 0.05 * E[0] + math.sqrt(1 - 0.05**2) * E[3]])
PROBES = {"a": (np.array([1.0, 0, 0, 0]), -0.5), "b": (np.array([0, 0, 1.0, 0]), -0.5)}
MAIN = {"a": [0], "b": [2]}
C = 1 / math.sqrt(2)


def _case(a_words):
    """Test words of 'a' (x, f) plus two 'b' words whose main latent fires; one train word per letter."""
    rows = [*a_words, (2 * E[2], [0, 0, 2, 0]), (2 * E[2], [0, 0, 3, 0])]
    acts = torch.stack([x for x, _ in rows] + [E[0], E[2]])
    latents = torch.tensor([f for _, f in rows] + [[1, 0, 0, 0], [0, 0, 1, 0]], dtype=torch.float64)
    letters = ["a"] * len(a_words) + ["b", "b", "a", "b"]
    train = np.array([False] * len(rows) + [True, True])
    return acts, letters, train, latents


def test_full_and_partial_absorption_match_the_hand_count():
    acts, letters, train, latents = _case(
        [
            (2 * E[0], [2, 0, 0, 0]),  # main fires, covers x·p = 2: neither
            (
                2 * E[0],
                [0, 2, 0, 0],
            ),  # main off, absorber P = 2·0.707 = 1.41 ≥ 0.4·2: full; fraction 1 (M = 0)
            (2 * E[0], [0, 0.5, 0, 0]),  # absorber P = 0.35 < 0.8: neither
            (2 * E[0], [1, 1.5, 0, 0]),  # main fires (M = 1), A = 1.06 ≥ 0.8: a = min(1.06, 2 − 1) = 1 → 1/2
            (2 * E[0], [0, 0, 0, 30]),  # top latent 3: P = 1.5, cos 0.05 ≥ 0.025: full; cos < 0.1: fraction 0
            (0.3 * E[0], [0, 2, 0, 0]),  # probe score 0.3 − 0.5 < 0: not a true positive, not counted
        ]
    )
    out = icl_absorption_score(acts, letters, train, latents, W_DEC, S, probes=PROBES, main_latents=MAIN)
    a = out.letters["a"]
    assert a["n_true_positives"] == 5 and a["n_full"] == 2
    assert a["full_rate"] == pytest.approx(2 / 5)
    assert a["fraction"] == pytest.approx((0 + 1 + 0 + 0.5 + 0) / 5)
    assert a["probe_f1"] == pytest.approx(2 * 5 / (2 * 5 + 1))  # 5 TP, 1 FN, no FP
    assert out.letters["b"]["full_rate"] == 0 and out.letters["b"]["fraction"] == 0
    assert out.n_letters == 2
    assert out.full_absorption == pytest.approx((0.4 + 0) / 2)
    assert out.absorption_fraction == pytest.approx((0.3 + 0) / 2)
    assert out.num_split_features == 1


def test_no_absorption_when_the_main_latents_fire():
    acts, letters, train, latents = _case([(2 * E[0], [2, 0, 0, 0]), (3 * E[0], [3, 1, 0, 0])])
    out = icl_absorption_score(acts, letters, train, latents, W_DEC, S, probes=PROBES, main_latents=MAIN)
    assert out.full_absorption == 0 and out.absorption_fraction == 0


def test_too_few_scored_letters_give_nan():
    acts, letters, train, latents = _case([(2 * E[0], [0, 2, 0, 0])])
    out = icl_absorption_score(
        acts, letters, train, latents, W_DEC, IclAbsorptionSettings(), probes=PROBES, main_latents=MAIN
    )
    assert out.n_letters == 2 and math.isnan(out.full_absorption) and math.isnan(out.absorption_fraction)


def test_k_sparse_probing_finds_the_letter_latents():
    """Latent 3 fires exactly on 'a' words, latent 7 on 'b' words, the rest is noise: k = 1 is perfect."""
    rng = np.random.default_rng(0)
    lab = np.array(["a", "b", "c"] * 40)
    f = torch.tensor(rng.random((120, 12)) * (rng.random((120, 12)) < 0.3), dtype=torch.float32)
    f[:, 3], f[:, 7] = torch.tensor(lab == "a") * 2.0, torch.tensor(lab == "b") * 2.0
    ks = k_sparse_probes(f[:80], lab[:80], f[80:], lab[80:], ["a", "b"], IclAbsorptionSettings(max_k=3))
    assert ks["a"].main == [3] and ks["b"].main == [7]
    assert ks["a"].f1[0] == 1.0 and len(ks["a"].f1) == 3


def test_end_to_end_fit_on_a_synthetic_letter_set():
    """Residuals e_letter + noise, an SAE whose latent i reads e_i except on a few 'a' words where an
    absorber (decoder e0 + e3) fires instead: the fitted pipeline finds latent 0 and counts those words."""
    rng = np.random.default_rng(1)
    d, n = 6, 300
    lab = np.array(["a", "b", "c"] * (n // 3))
    x = torch.tensor(np.eye(d)[[ord(c) - 97 for c in lab]] * 3 + 0.1 * rng.standard_normal((n, d)))
    W_dec = torch.eye(d, dtype=torch.float64)
    W_dec[3] = (W_dec[0] + W_dec[3]) / math.sqrt(2)
    f = torch.zeros(n, d, dtype=torch.float64)
    f[:, :3] = torch.tensor(np.eye(d)[[ord(c) - 97 for c in lab]][:, :3] * 3)
    train = np.arange(n) < 200
    absorbed = np.flatnonzero((lab == "a") & ~train)[:5]
    f[absorbed, 0], f[absorbed, 3] = 0.0, 4.0
    s = IclAbsorptionSettings(min_letters=3, max_k=2)
    out = icl_absorption_score(x, list(lab), train, f, W_dec, s)
    assert out.letters["a"]["main"] == [0]
    n_tp = out.letters["a"]["n_true_positives"]
    assert out.letters["a"]["n_full"] == 5 and out.letters["a"]["full_rate"] == pytest.approx(5 / n_tp)
    assert out.letters["b"]["n_full"] == 0 and out.n_letters == 3


def test_settings_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown key"):
        IclAbsorptionSettings.from_dict({"nwords": 3})
    with pytest.raises(ConfigError, match="template"):
        IclAbsorptionSettings.from_dict({"template": "has the first letter:"})


def test_icl_context():
    assert icl_context([" cat", " Dog"], "{word} has the first letter:") == (
        "\n cat has the first letter: C\n Dog has the first letter: D\n"
    )


def test_word_residuals_equal_full_prompts(tmp_path):
    """The shared-prefix cache gives the residual a full forward of prefix + word gives."""
    from saeflow.models.causal_lm import load_lm, residual_stream
    from tests.tiny_models import save_tiny_model

    save_tiny_model(tmp_path / "m")
    lm = load_lm(tmp_path / "m")
    prefix, words = [5, 9, 12, 7], [20, 33, 41]
    got = word_residuals(lm, 1, prefix, words, batch_size=2)
    for i, w in enumerate(words):
        full = residual_stream(lm, torch.tensor([[*prefix, w]]), None, 1)[0, -1]
        torch.testing.assert_close(got[i], full.float(), rtol=1e-4, atol=1e-4)


def test_letter_set_round_trip(tmp_path):
    probes = {"a": (np.array([1.0, 2.0]), -0.5)}
    ls = LetterSet(
        torch.randn(3, 2), [" ant", " bee", " axe"], ["a", "b", "a"], np.array([1, 0, 1], bool), probes
    )
    ls.save(tmp_path / "l.safetensors")
    back = LetterSet.load(tmp_path / "l.safetensors")
    torch.testing.assert_close(back.acts, ls.acts)
    assert (
        back.words == ls.words and back.letters == ls.letters and back.train.tolist() == [True, False, True]
    )
    assert back.probes["a"][1] == -0.5 and back.probes["a"][0].tolist() == [1.0, 2.0]
