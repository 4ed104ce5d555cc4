"""Boosted SAEs: residual SAEs of a frozen base, their training target, saving, and the summed
reconstruction."""

import json

import pytest
import torch
from safetensors.torch import load_file
from store_helpers import sparse_data, write_store

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError, DataError
from saeflow.metrics import fvu
from saeflow.sae import SAEConfig, load_sae, make_sae
from saeflow.sae.boosted import BoostedSAE, load_boosted
from saeflow.train import TrainConfig, train_sae

torch.set_num_threads(1)
D = 16


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A TopK base SAE trained briefly on 'general' data (features 0..47)."""
    tmp = tmp_path_factory.mktemp("boost")
    store = ActivationStore(write_store(tmp / "general", sparse_data(1024, D, 48, 3, seed=0)))
    cfg = SAEConfig(architecture="topk", d_in=D, d_sae=32, k=3)
    train_sae(
        cfg,
        TrainConfig(lr=3e-3, batch_size=128, epochs=2, warmup_steps=2, checkpoint_every=0),
        store,
        tmp / "base",
    )
    return tmp / "base"


def _residual(base_dir, arch="residual_topk", d_sae=8, k=2, seed=0):
    return make_sae(
        {"architecture": arch, "d_in": D, "d_sae": d_sae, "k": k, "extra": {"base": str(base_dir)}}, seed=seed
    )


def test_residual_target_is_the_base_error_and_decoder_has_no_bias(base_dir):
    res = _residual(base_dir)
    with torch.no_grad():
        res.b_dec.fill_(0.7)  # input centring only: never added to the output
    res.input_scale = 2.0
    x = torch.randn(5, D)
    base = load_sae(base_dir)
    e = res.base_error(x * 2.0)
    torch.testing.assert_close(e, (x - base.reconstruct_raw(x).recon) * 2.0)
    f, recon = res(x * 2.0)
    torch.testing.assert_close(recon, f @ res.W_dec)
    assert not any(p is base.W_enc for p in res.parameters())  # the base is not a parameter
    assert set(res.state_dict()) >= {"W_enc", "W_dec"} and not any(
        k.startswith("base") for k in res.state_dict()
    )


def test_boosted_reconstruction_is_base_plus_residuals(base_dir, tmp_path):
    r1, r2 = _residual(base_dir, seed=1), _residual(base_dir, arch="residual_batchtopk", seed=2)
    with torch.no_grad():
        r1.b_enc.fill_(0.5)
        r2.b_enc.fill_(0.5)
        r2.threshold.fill_(0.1)
    base = load_sae(base_dir)
    x = torch.randn(7, D)
    boosted = BoostedSAE(base, [r1, r2])
    f, recon = boosted.reconstruct_raw(x)
    expected = base.reconstruct_raw(x).recon + r1.reconstruct_raw(x).recon + r2.reconstruct_raw(x).recon
    torch.testing.assert_close(recon, expected)
    assert f.shape == (7, 32 + 8 + 8) and boosted.d_sae == 48
    # saved residuals + their recorded base give the same boosted function
    r1.save(tmp_path / "r1")
    r2.save(tmp_path / "r2")
    again = load_boosted([tmp_path / "r1", tmp_path / "r2"])
    torch.testing.assert_close(again.reconstruct_raw(x).recon, recon, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["residual_topk", "residual_batchtopk"])
def test_saved_residual_is_a_plain_sae_mapping_x_to_the_error(base_dir, tmp_path, arch):
    res = _residual(base_dir, arch=arch)
    with torch.no_grad():
        res.b_dec.normal_()  # a non-zero centring must be folded into b_enc
        res.b_enc.normal_()
    res.input_scale = 3.0
    x = torch.randn(6, D)
    res.training_loss(torch.randn(6, D) * 3.0)  # sets the BatchTopK threshold
    f_ref, e_ref = res.reconstruct_raw(x)
    res.save(tmp_path / "r")
    cfg = json.loads((tmp_path / "r" / "cfg.json").read_text())
    w = load_file(str(tmp_path / "r" / "sae_weights.safetensors"))
    assert cfg["architecture"] == {"residual_topk": "topk", "residual_batchtopk": "jumprelu"}[arch]
    assert cfg["saeflow_boost"]["base"] == str(base_dir) and torch.all(w["b_dec"] == 0)
    # what SAELens computes from the saved weights: act((x − b_dec) W_enc + b_enc) W_dec + b_dec
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    f = (
        make_sae({"architecture": "topk", "d_in": D, "d_sae": 8, "k": 2}).activation(pre)
        if arch == "residual_topk"
        else torch.relu(pre) * (pre > w["threshold"])
    )
    torch.testing.assert_close(f, f_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f @ w["W_dec"] + w["b_dec"], e_ref, atol=1e-5, rtol=1e-5)
    loaded = load_sae(tmp_path / "r")
    torch.testing.assert_close(loaded.reconstruct_raw(x).recon, e_ref, atol=1e-5, rtol=1e-5)


def test_residual_training_lowers_the_domain_error(base_dir, tmp_path):
    # domain data: general features plus 8 features the base never saw
    gen = sparse_data(1024, D, 48, 2, seed=0)
    new = sparse_data(1024, D, 8, 1, seed=7) - 0.3
    domain = gen + 1.5 * new
    store = ActivationStore(write_store(tmp_path / "domain", domain))
    base = load_sae(base_dir)
    held = domain[:256]
    before = fvu(held, base.reconstruct_raw(held).recon)
    cfg = SAEConfig(architecture="residual_topk", d_in=D, d_sae=16, k=2, extra={"base": str(base_dir)})
    result = train_sae(
        cfg,
        TrainConfig(lr=3e-3, batch_size=128, epochs=10, warmup_steps=2, checkpoint_every=0),
        store,
        tmp_path / "res",
    )
    boosted = load_boosted([tmp_path / "res"])
    after = fvu(held, boosted.reconstruct_raw(held).recon)
    assert after < 0.8 * before
    hist = result.metrics["history"]
    # the residual starts near zero (small encoder init): the boosted error starts at the base's and falls
    assert hist[0]["mse"] < hist[0]["base_mse"] * 1.1 and hist[-1]["mse"] < 0.8 * hist[-1]["base_mse"]
    # the base itself is untouched
    torch.testing.assert_close(boosted.base.reconstruct_raw(held).recon, base.reconstruct_raw(held).recon)


def test_residual_needs_an_existing_base(tmp_path):
    with pytest.raises(ConfigError, match="extra.base"):
        make_sae({"architecture": "residual_topk", "d_in": D, "d_sae": 8, "k": 2})
    with pytest.raises(DataError, match="does not exist"):
        make_sae(
            {
                "architecture": "residual_topk",
                "d_in": D,
                "d_sae": 8,
                "k": 2,
                "extra": {"base": str(tmp_path / "x")},
            }
        )
    with pytest.raises(DataError, match="not a residual"):
        make_sae({"architecture": "topk", "d_in": D, "d_sae": 8, "k": 2}).save(tmp_path / "plain")
        load_boosted([tmp_path / "plain"])


def test_load_for_evaluation_boosts_a_residual_on_its_base(base_dir, tmp_path):
    from saeflow.sae.boosted import load_for_evaluation

    r = _residual(base_dir, seed=3)
    with torch.no_grad():
        r.b_enc.fill_(0.5)
    r.save(tmp_path / "r")
    x = torch.randn(5, D)
    plain = load_for_evaluation(base_dir)
    assert not isinstance(plain, BoostedSAE)
    boosted = load_for_evaluation(tmp_path / "r")
    assert isinstance(boosted, BoostedSAE) and len(boosted.residuals) == 1
    expected = load_sae(base_dir).reconstruct_raw(x).recon + load_sae(tmp_path / "r").reconstruct_raw(x).recon
    torch.testing.assert_close(boosted.reconstruct_raw(x).recon, expected, atol=1e-5, rtol=1e-5)
    stacked = load_for_evaluation(base_dir, [tmp_path / "r", tmp_path / "r"])
    assert len(stacked.residuals) == 2


def _ev(ev, dce, l0=10.0):
    return {"explained_variance": ev, "delta_ce": dce, "l0": l0}


def test_boosting_table_hand_computed():
    from saeflow.studies.boosting.report import STACKED_LABEL, boosting_table

    evals = {
        "base": {"general": _ev(0.8, 0.2), "med": _ev(0.5, 0.6), "soc": _ev(0.4, 0.8)},
        "res-med": {"general": _ev(0.79, 0.21), "med": _ev(0.7, 0.3)},
        "res-soc": {"general": _ev(0.8, 0.2), "soc": _ev(0.6, 0.4)},
        "ft-med": {"general": _ev(0.6, 0.5), "med": _ev(0.75, 0.25)},
        "stacked": {"general": _ev(0.78, 0.22), "med": _ev(0.69, 0.31), "soc": _ev(0.58, 0.45)},
    }
    df = boosting_table(
        evals,
        base="base",
        residuals={"med": "res-med", "soc": "res-soc"},
        finetunes={"med": "ft-med"},
        stacked="stacked",
        general="general",
    )
    assert list(df.method) == [
        "base",
        "base + residual",
        "full finetune",
        "base",
        "base + residual",
        STACKED_LABEL,
    ]
    res = df[(df.subdomain == "med") & (df.method == "base + residual")].iloc[0]
    assert res.domain_ev_gain_pct == pytest.approx(40.0)  # (0.7 − 0.5) / 0.5
    assert res.general_retention_pct == pytest.approx(98.75)  # 0.79 / 0.8
    assert res.domain_delta_ce == pytest.approx(0.3)
    ft = df[df.method == "full finetune"].iloc[0]
    assert ft.general_retention_pct == pytest.approx(75.0)  # 0.6 / 0.8
    base = df[df.method == "base"].iloc[0]
    assert base.domain_ev_gain_pct == 0 and base.general_retention_pct == 100
    st = df[df.subdomain == "all"].iloc[0]
    assert st.domain_explained_variance == pytest.approx(0.635)  # mean of 0.69 and 0.58
    assert st.domain_ev_gain_pct == pytest.approx(100 * (0.635 - 0.45) / 0.45)  # base: mean of 0.5 and 0.4
    assert st.general_retention_pct == pytest.approx(97.5)
