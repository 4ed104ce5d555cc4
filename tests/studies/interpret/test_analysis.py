"""The interpret study's analysis on a planted SAE (latent j fires exactly on token j): explanations name the
token, detection beats the shuffled control, tables and dashboard hold the sampled latents; its SAE
selection."""

import numpy as np
import pandas as pd
import pytest
import torch
from store_helpers import write_store

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError
from saeflow.interpret.pipeline import (
    SCORE_COLUMNS,
    CachedEmbed,
    explain_and_score,
    interpret_sae,
    sample_latents,
    write_sae_dashboard,
)
from saeflow.latents import LatentsConfig, top_activations
from saeflow.sae.base import make_sae
from saeflow.studies.interpret.analysis import (
    autointerp_columns,
    interleave_documents,
    steering_targets,
    summarise,
)
from saeflow.studies.interpret.specs import TEXTSET, interpret_budget, interpret_saes, steering_sae

WORDS = ["alpha", "beta", "gamma", "delta", "kappa", "sigma", "omega", "theta"]


def decode(ids):
    return [f" {WORDS[i]}" if 0 <= i < len(WORDS) else " ?" for i in ids]


@pytest.fixture()
def planted(tmp_path):
    g = torch.Generator().manual_seed(0)
    n, d = 1200, 8
    tokens = torch.randint(0, d, (n,), generator=g)
    acts = torch.nn.functional.one_hot(tokens, d).float() * (2 + torch.rand(n, 1, generator=g))
    acts += 0.05 * torch.randn(n, d, generator=g)
    path = write_store(tmp_path / "acts", acts, token_ids=tokens, doc_index=torch.arange(n) // 30)
    sae = make_sae({"architecture": "relu", "d_in": d, "d_sae": d}, seed=0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(d))
        sae.W_dec.copy_(torch.eye(d))
        sae.b_enc.fill_(-1.0)
        sae.b_dec.zero_()
    return sae, top_activations(sae, ActivationStore(path), LatentsConfig(**LATENTS)), ActivationStore(path)


LATENTS = {
    "n_top": 10,
    "n_quantiles": 2,
    "per_quantile": 5,
    "n_random": 20,
    "random_pool": 400,
    "window_left": 3,
    "window_right": 1,
}


SETTINGS = {
    "n_latents": 6,
    "min_activations": 20,
    "seed": 0,
    "explainer": "token",
    "token": {},
    "classifier": "rule",
    "scorers": ["detection", "embedding"],
    "threshold": 0.8,
    "dashboard": {},
}


def bag_of_words(texts):
    return np.array([[t.count(w) for w in WORDS] + [1e-3] for t in texts], dtype=float)


def test_planted_latents_are_explained_and_beat_the_control(planted, tmp_path):
    sae, acts, _ = planted
    latents = sample_latents(acts, 6, 20, seed=0)
    assert len(latents) == 6 and latents == sample_latents(acts, 6, 20, seed=0)
    res = explain_and_score(acts, latents, decode, SETTINGS, sae_name="planted", embed=bag_of_words)
    s = res.scores
    assert list(s.columns) == SCORE_COLUMNS
    assert set(s.scorer) == {"detection", "embedding"} and len(s) == 2 * len(latents)
    for lat in latents:
        assert f'"{WORDS[lat]}"' in res.explanations[lat].text
    det = s[s.scorer == "detection"]
    # the rule classifier reads the whole window, where the token may sit off-centre in a non-activating
    # context
    assert (det.balanced_accuracy >= 0.7).all() and det.auroc.min() >= 0.7
    assert det.control_balanced_accuracy.mean() < 0.6 < det.balanced_accuracy.mean()
    assert (det.control_latent != det.latent).all()
    summary = summarise(s, 0.8)
    row = summary.iloc[0]
    assert row.detection_bacc == det.balanced_accuracy.mean()
    assert row["detection_share_ge_0.8"] > row["detection_share_ge_0.8_control"] == 0.0
    assert row.embedding_auroc > row.embedding_auroc_control
    index = write_sae_dashboard(
        tmp_path / "dash", "planted", acts, res, decode, sae.W_dec.detach(), torch.eye(8), SETTINGS
    )
    page = (index.parent / "page_000.html").read_text()
    assert all(f"id='l{lat}'" in page for lat in latents) and "planted" in index.read_text()
    targets = steering_targets(s, 2)
    assert len(targets) == 2 and all(terms == [c] and WORDS[lat] == c for c, (lat, terms) in targets.items())


def test_sample_falls_back_to_live_latents(planted):
    _, acts, _ = planted
    assert (
        len(sample_latents(acts, 4, 10_000, seed=0)) == 2
    )  # none qualifies: the two most frequent live ones


def test_steering_targets_skip_weak_and_non_words():
    scores = pd.DataFrame(
        {
            "latent": [0, 1, 2, 3],
            "scorer": "detection",
            "balanced_accuracy": [1.0, 0.9, 0.8, 0.7],
            "explanation": [
                'weak: the token(s) "cat" (10%)',
                'the token(s) "," (50%)',
                'the token(s) "dog" (40%)',
                'the token(s) "sun" (30%)',
            ],
        }
    )
    assert steering_targets(scores, 5) == {"dog": (2, ["dog"]), "sun": (3, ["sun"])}


def test_cached_embed_embeds_each_text_once():
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.ones((len(texts), 2))

    e = CachedEmbed(embed)
    e(["a", "b"])
    e(["b", "c", "a"])
    assert calls == [["a", "b"], ["c"]]


def test_interleave_documents():
    out = interleave_documents([[{"id": 1, "text": "a"}, {"id": 2, "text": "b"}], [{"id": 1, "text": "x"}]])
    assert [d["text"] for d in out] == ["a", "x", "b"] and len({d["id"] for d in out}) == 3


def test_sae_selection():
    specs = {
        "gsae": {"architecture": "topk", "model": "m"},
        "arch-b": {"architecture": "batchtopk", "model": "m"},
        "prot": {"architecture": "batchtopk", "model": "esm"},
    }
    config = {
        "model": {"name": "m"},
        "interpret": {
            "saes": ["gsae", "architecture:batchtopk", "ssae-x", "gsae"],
            "skip_missing": True,
            "steering": {},
        },
    }
    assert interpret_saes(config, specs) == ["gsae", "arch-b"]
    assert steering_sae(config, specs) == "gsae"
    assert interpret_budget({**config, "interpret": {**config["interpret"], "tokens": 99}}, TEXTSET) == 99
    assert interpret_budget(config, "general.heldout") is None
    strict = {"model": {"name": "m"}, "interpret": {"saes": ["prot"], "skip_missing": False}}
    with pytest.raises(ConfigError, match="interpret.saes"):
        interpret_saes(strict, specs)
    assert interpret_saes({"model": {"name": "m"}}, specs) == []


class _Tokenizer:
    """Just enough tokenizer for token_strings: ids decode to the planted words."""

    def decode(self, ids):
        return "".join(f" {WORDS[i]}" if 0 <= i < len(WORDS) else " ?" for i in ids)


def test_interpret_sae_is_top_activations_then_explain_and_score(planted):
    sae, acts, store = planted
    cfg = {**SETTINGS, "scorers": ["detection"], "latents": LATENTS}
    done = interpret_sae(sae, store, _Tokenizer(), cfg, sae_name="planted")
    assert torch.equal(done.acts.frequency, acts.frequency)
    assert done.result.latents == sample_latents(acts, 6, 20, seed=0)
    direct = explain_and_score(acts, done.result.latents, decode, cfg, sae_name="planted")
    assert done.result.scores.balanced_accuracy.tolist() == direct.scores.balanced_accuracy.tolist()
    # a row mask hides rows: the frequencies are those of the kept half
    mask = torch.ones(acts.n_rows, dtype=torch.bool)
    mask[:600] = False
    masked = interpret_sae(sae, store, _Tokenizer(), cfg, sae_name="planted", row_mask=mask)
    kept = top_activations(sae, store, LatentsConfig(**LATENTS), row_mask=mask)
    assert torch.equal(masked.acts.frequency, kept.frequency)
    assert not torch.equal(masked.acts.frequency, acts.frequency)


def test_autointerp_columns_are_one_saes_summary_by_hand():
    scores = pd.DataFrame(
        {
            "latent": [1, 1, 2, 2],
            "scorer": ["detection", "embedding", "detection", "embedding"],
            "balanced_accuracy": [0.9, None, 0.5, None],
            "control_balanced_accuracy": [0.4, None, 0.6, None],
            "auroc": [0.95, 0.7, 0.55, 0.6],
            "control_auroc": [0.5, 0.5, 0.45, 0.4],
        }
    )
    cols = autointerp_columns(scores, 0.8)
    assert cols["autointerp_n_latents"] == 2
    assert cols["autointerp_detection_bacc"] == pytest.approx(0.7)
    assert cols["autointerp_detection_bacc_control"] == pytest.approx(0.5)
    assert cols["autointerp_detection_auroc"] == pytest.approx(0.75)
    assert cols["autointerp_detection_share_ge_0.8"] == pytest.approx(0.5)
    assert cols["autointerp_detection_share_ge_0.8_control"] == 0
    assert cols["autointerp_embedding_auroc"] == pytest.approx(0.65)
    assert cols["autointerp_embedding_auroc_control"] == pytest.approx(0.45)
