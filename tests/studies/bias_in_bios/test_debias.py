"""Probes, attribution, ablation, worst-group accuracy, SCR and the whole SHIFT study (hand-made and real
data)."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from saeflow.errors import ConfigError
from saeflow.studies.bias_in_bios.debias import (
    LabelledSet,
    LinearProbe,
    ShiftConfig,
    ablate,
    baseline_rows,
    classifier_gender_accuracy,
    cohens_d,
    fit_probe,
    gender_probe_accuracy,
    group_accuracies,
    ig_attribution,
    integrated_gradients,
    latent_attribution,
    pool_by_doc,
    random_latents,
    rank_gender_latents,
    scr_score,
    shift_study,
    spliced_probe_loss,
    stratified_folds,
)

ROOT = Path(__file__).resolve().parents[3]
SURGEON_NURSE = (
    ROOT / ".." / "shared" / "data" / "biasbios_find_surgeon_nurse" / "biosbias2_surgeon_nurse.jsonl"
)
SMOLLM2 = ROOT / "resources" / "models" / "smollm2-135m"


def test_integrated_gradients_of_a_linear_metric_is_exact():
    # metric_n(f) = f_n · a (linear): gradient a everywhere, so IG_n,i = (f_n,i − 0)·a_i for any step count,
    # e.g. f = [2, −1, 0.5], a = [3, 4, −2] -> [6, −4, −1]
    a = torch.tensor([3.0, 4.0, -2.0], dtype=torch.float64)
    f = torch.tensor([[2.0, -1.0, 0.5], [1.0, 0.0, 1.0]], dtype=torch.float64)
    for steps in (1, 3, 10):
        ig = integrated_gradients(lambda g: g @ a, f, steps=steps)
        torch.testing.assert_close(ig, f * a)
    # from a baseline f0: (f − f0)·a
    f0 = torch.ones_like(f)
    torch.testing.assert_close(integrated_gradients(lambda g: g @ a, f, f0, steps=2), (f - f0) * a)


def test_integrated_gradients_of_a_quadratic_metric_by_hand():
    # metric(f) = (f·a)²: ∂/∂f_i at αf = 2α(f·a)a_i, ∫₀¹ 2α dα = 1 (the midpoint rule is exact for it), so
    # IG_i = f_i a_i (f·a); f = [1, 2], a = [1, −3]: f·a = −5 -> IG = [−5, 30], summing to metric(f) − 0 = 25
    a = torch.tensor([1.0, -3.0], dtype=torch.float64)
    f = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    ig = integrated_gradients(lambda g: (g @ a) ** 2, f, steps=1)
    torch.testing.assert_close(ig, torch.tensor([[-5.0, 30.0]], dtype=torch.float64))


def test_ig_attribution_of_a_linear_probe_is_the_exact_effect_on_its_logit():
    # a metric linear in the latents: the probe's logit through the spliced path. IG = (f − 0)·grad exactly,
    # grad_i = w·W_dec,i
    rng = np.random.default_rng(0)
    W_dec, x, f = rng.normal(size=(3, 5)), rng.normal(size=(4, 5)), rng.random((4, 3))
    probe = LinearProbe(rng.normal(size=5), 0.3)
    rest = torch.as_tensor(x - f @ W_dec)
    logit = lambda g: (rest + g @ torch.as_tensor(W_dec)) @ torch.as_tensor(probe.w) + probe.b  # noqa: E731
    ig = integrated_gradients(logit, torch.as_tensor(f), steps=4).numpy()
    np.testing.assert_allclose(ig, f * (W_dec @ probe.w))


def test_ig_attribution_of_the_probe_loss_matches_a_fine_riemann_sum():
    # the logistic loss is nonlinear in the latents: check against a 20,000-step midpoint sum of its
    # closed-form gradient (σ(z(α)) − y)·(w·W_dec,i), z(α) = w·(x − f W_dec + α f W_dec) + b
    rng = np.random.default_rng(1)
    W_dec, f = rng.normal(size=(4, 6)), 2 * rng.random((5, 4))
    x = f @ W_dec + 0.1 * rng.normal(size=(5, 6))
    y = np.array([0, 1, 1, 0, 1])
    probe = LinearProbe(rng.normal(size=6), -0.2)
    u = W_dec @ probe.w  # [m]
    z0 = (x - f @ W_dec) @ probe.w + probe.b  # [N] logit with every latent zeroed
    alphas = (np.arange(20000) + 0.5) / 20000
    z = z0[:, None] + alphas[None, :] * (f @ u)[:, None]  # [N, steps]
    mean_dl = (1 / (1 + np.exp(-z)) - y[:, None]).mean(1)  # [N] mean over α of ∂loss/∂logit
    reference = f * u[None, :] * mean_dl[:, None]  # [N, m] IG of the loss
    loss = spliced_probe_loss(x, f, W_dec, probe, y)
    ig = integrated_gradients(loss, torch.as_tensor(f), steps=200).numpy()
    np.testing.assert_allclose(ig, reference, rtol=1e-4, atol=1e-7)
    # completeness: per bio, the IGs sum to loss(f) − loss(0)
    full = loss(torch.as_tensor(f)).numpy() - loss(torch.zeros(5, 4, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ig.sum(1), full, rtol=1e-4)
    # the attribution: |mean over bios of the ablation effect −IG|, 10 steps close to the fine sum
    np.testing.assert_allclose(
        ig_attribution(x, f, y, probe, W_dec, steps=10), np.abs(reference.mean(0)), rtol=2e-2
    )


def test_attribution_hand_example():
    # class 0 rows: f = [2,0,1], [4,0,1] -> mean [3,0,1]; class 1: [0,1,1], [0,3,1] -> mean [0,2,1]
    f = np.array([[2, 0, 1], [4, 0, 1], [0, 1, 1], [0, 3, 1]], dtype=float)
    W_dec = np.array([[1, 0], [0, 2], [5, 5]], dtype=float)
    w = np.array([1.0, 1.0])  # W_dec @ w = [1, 2, 10]
    # e = |[3, -2, 0] * [1, 2, 10]| = [3, 4, 0]
    np.testing.assert_allclose(latent_attribution(f, np.array([0, 0, 1, 1]), w, W_dec), [3, 4, 0])


def test_ablation_commutes_with_mean_pooling():
    # one text, two tokens: x1 = [1,1], x2 = [3,3]; f1 = [1,0], f2 = [3,2]; ablate latent 0 (W_dec row [1,0])
    # per token: [1,1] - 1*[1,0] = [0,1]; [3,3] - 3*[1,0] = [0,3]; mean [0,2]
    x_tok = np.array([[1, 1], [3, 3]], dtype=float)
    f_tok = np.array([[1, 0], [3, 2]], dtype=float)
    W_dec = np.eye(2)
    per_token = ablate(x_tok, f_tok, W_dec, [0]).mean(0)
    pooled = ablate(x_tok.mean(0, keepdims=True), f_tok.mean(0, keepdims=True), W_dec, [0])[0]
    np.testing.assert_allclose(per_token, [0, 2])
    np.testing.assert_allclose(pooled, [0, 2])
    # random sizes: same identity; nothing ablated leaves x unchanged (error term kept)
    rng = np.random.default_rng(0)
    x, f, W = rng.normal(size=(7, 5)), rng.random((7, 9)), rng.normal(size=(9, 5))
    np.testing.assert_allclose(
        ablate(x, f, W, [1, 4, 8]).mean(0), ablate(x.mean(0)[None], f.mean(0)[None], W, [1, 4, 8])[0]
    )
    np.testing.assert_array_equal(ablate(x, f, W, []), x)


def test_worst_group_and_classifier_gender_hand_example():
    group = np.array(["A/M"] * 4 + ["A/F"] * 4 + ["B/M"] * 4 + ["B/F"] * 4)
    label = np.array([0] * 8 + [1] * 8)
    gender = np.array(["M"] * 4 + ["F"] * 4 + ["M"] * 4 + ["F"] * 4)
    pred = np.array([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1])
    assert group_accuracies(pred, label, group) == {"A/M": 0.75, "A/F": 0.5, "B/M": 1.0, "B/F": 0.75}
    assert min(group_accuracies(pred, label, group).values()) == 0.5
    # predictions matching A<->M, B<->F: A/M 3, A/F 2, B/M 0, B/F 3 -> 8 of 16
    assert classifier_gender_accuracy(pred, gender) == 0.5


def test_scr_hand_example():
    assert scr_score(0.75, 0.6, 0.9) == pytest.approx(0.5)  # (0.75 - 0.6) / (0.9 - 0.6)
    assert scr_score(0.6, 0.6, 0.9) == 0.0
    assert math.isnan(scr_score(0.7, 0.6, 0.6))


def test_gender_gap_hand_example():
    from saeflow.studies.bias_in_bios.debias import LinearProbe, gender_gap

    # groups A/M, A/F, B/M, B/F; W_dec = I; x = f + error, error [0, 1] on the female bios
    f = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    x = np.array([[0, 0], [1, 1], [0, 1], [1, 2]], dtype=float)
    test = LabelledSet(
        x, np.array([0, 0, 1, 1]), np.array(["M", "F", "M", "F"]), np.array(["A/M", "A/F", "B/M", "B/F"])
    )
    # gap(x) = ((B/F + A/F) - (B/M + A/M)) / 2 = [1, 1] -> w·gap = 2 + 3 = 5
    # gap(f) = [1, 0] -> per latent [1, 0] * (W_dec @ w = [2, 3]) = [2, 0]: latents 2, error 3
    gap = gender_gap(LinearProbe(np.array([2.0, 3.0]), 0.0), test, f, np.eye(2), [0])
    assert gap == pytest.approx((5.0, 2.0, 3.0, 2.0))


def test_cohens_d_hand_example():
    # positive [1, 3] (mean 2, var 2), rest [0, 2] (mean 1, var 2): pooled sd sqrt(2), d = 1/sqrt(2)
    f = np.array([[1, 5], [3, 5], [0, 5], [2, 5]], dtype=float)
    d = cohens_d(f, np.array([True, True, False, False]))
    np.testing.assert_allclose(d, [1 / math.sqrt(2), 0.0])  # a constant latent gets 0


@pytest.mark.parametrize("standardize", [False, True])
def test_probe_is_expressed_in_raw_space(standardize):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)) * np.array([100, 1, 1, 1, 1, 0.01]) + 3
    y = (x[:, 1] + 0.3 * rng.normal(size=80) > 3).astype(int)
    probe = fit_probe(x, y, ShiftConfig(standardize=standardize))
    ref = make_pipeline(StandardScaler(), LogisticRegression()) if standardize else LogisticRegression()
    ref.fit(x, y)
    np.testing.assert_allclose(x @ probe.w + probe.b, ref.decision_function(x), rtol=1e-5, atol=1e-6)


def test_folds_are_stratified_and_gender_probe_reads_gender():
    group = np.array(["A/M", "A/F", "B/M", "B/F"] * 10)
    folds = stratified_folds(group, 5, seed=0)
    for k in range(5):
        assert sorted(group[folds == k]) == sorted(["A/M", "A/F", "B/M", "B/F"] * 2)
    gender = np.array([g[-1] for g in group])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    x[:, 0] += np.where(gender == "F", 4.0, -4.0)
    data = LabelledSet(x, np.array([g[0] == "B" for g in group], dtype=int), gender, group)
    assert gender_probe_accuracy(data, ShiftConfig(gender_folds=5)) == 1.0
    assert gender_probe_accuracy(data.with_x(rng.normal(size=(40, 3))), ShiftConfig()) < 0.8


def test_config_is_checked():
    with pytest.raises(ConfigError, match="selection"):
        ShiftConfig(selection="ig")
    cfg = ShiftConfig.from_dict({"n_latents": 3, "scr_n": [1, 2], "probe": {"C": 0.5}, "unrelated": 1})
    assert (cfg.n_latents, cfg.scr_n, cfg.C) == (3, (1, 2), 0.5)
    assert (cfg.attributions, cfg.ig_steps) == (("linear", "ig"), 10)
    cfg = ShiftConfig.from_dict({"attribution": {"methods": ["ig"], "steps": 4}})
    assert (cfg.attributions, cfg.ig_steps) == (("ig",), 4)
    with pytest.raises(ConfigError, match="attribution.methods"):
        ShiftConfig(attributions=("linear", "gradient"))
    with pytest.raises(ConfigError, match="attribution.steps"):
        ShiftConfig(ig_steps=0)


# --------------------------------------------------------------------------- a synthetic SHIFT study


def synthetic(n_per_group: dict[str, int], rng, W_dec):
    """Pooled latents: 0 fires on female bios, 1 on profession B, 2..7 noise; x = f W_dec + small noise."""
    groups = np.array([g for g, n in n_per_group.items() for _ in range(n)])
    label = np.array([g[0] == "B" for g in groups], dtype=int)
    gender = np.array([g[-1] for g in groups])
    f = rng.random((len(groups), 8)) * 0.5
    f[:, 0] = np.where(gender == "F", 1.0, 0.0) * (0.5 + rng.random(len(groups)))
    f[:, 1] = np.where(label == 1, 1.0, 0.0) * (0.5 + rng.random(len(groups)))
    x = f @ W_dec + 0.3 * rng.normal(size=(len(groups), W_dec.shape[1]))
    return LabelledSet(x, label, gender, groups), f


def test_shift_finds_the_gender_latent_and_closes_the_gap():
    rng = np.random.default_rng(0)
    W_dec = rng.normal(size=(8, 16))
    amb, f_amb = synthetic({"A/M": 150, "B/F": 150}, rng, W_dec)
    test, f_test = synthetic({g: 60 for g in ("A/M", "A/F", "B/M", "B/F")}, rng, W_dec)
    oracle, f_or = synthetic({g: 60 for g in ("A/M", "A/F", "B/M", "B/F")}, rng, W_dec)
    cfg = ShiftConfig(n_latents=1, scr_n=(1, 2), gender_folds=3)

    probe = fit_probe(amb.x, amb.label, cfg)
    selection = rank_gender_latents(f_amb, amb, f_or, oracle, W_dec, probe, cfg)
    assert selection.ranking[0] == 0 and 1 not in selection.ranking  # profession latent is never a candidate
    g_cfg = ShiftConfig(selection="gender_probe")
    assert rank_gender_latents(f_amb, amb, f_or, oracle, W_dec, probe, g_cfg).ranking[0] == 0

    base = {r["method"]: r for r in baseline_rows(amb, test, oracle, cfg)}
    assert base["Oracle"]["worst_group_acc"] > base["Original"]["worst_group_acc"] + 0.2
    ig = rank_gender_latents(f_amb, amb, f_or, oracle, W_dec, probe, cfg, attribution="ig")
    assert ig.ranking[0] == 0 and 1 not in ig.ranking
    result = shift_study("GSAE", amb, test, oracle, f_amb, f_test, f_or, W_dec, base, cfg)
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {
        "GSAE SHIFT",
        "GSAE SHIFT + retrain",
        "GSAE SHIFT (IG)",
        "GSAE SHIFT (IG) + retrain",
        "Random ablation (GSAE)",
        "Random ablation (GSAE) + retrain",
    }
    assert result.latents == [0] and result.attributions["ig"]["latents"] == [0]
    assert rows["GSAE SHIFT (IG)"]["worst_group_acc"] > base["Original"]["worst_group_acc"] + 0.2
    assert rows["GSAE SHIFT"]["worst_group_acc"] > base["Original"]["worst_group_acc"] + 0.2
    assert rows["GSAE SHIFT"]["gender_acc"] < base["Original"]["gender_acc"]
    assert rows["GSAE SHIFT + retrain"]["worst_group_acc"] >= base["Oracle"]["worst_group_acc"] - 0.1
    assert rows["GSAE SHIFT"]["gender_probe_acc"] < base["Original"]["gender_probe_acc"]
    assert [(r["method"], r["n"]) for r in result.scr] == [
        ("SHIFT", 1),
        ("SHIFT (IG)", 1),
        ("Random ablation", 1),
        ("SHIFT", 2),
        ("SHIFT (IG)", 2),
        ("Random ablation", 2),
    ]
    assert result.scr[0]["scr"] > 0.2
    linear = dataclasses.replace(cfg, attributions=("linear",))
    linear_only = shift_study("GSAE", amb, test, oracle, f_amb, f_test, f_or, W_dec, base, linear)
    assert [r["method"] for r in linear_only.rows if "SHIFT" in r["method"]] == [
        "GSAE SHIFT",
        "GSAE SHIFT + retrain",
    ]


def test_random_latents_are_active_and_seeded():
    f = np.zeros((4, 10))
    f[:, [1, 3, 5, 7]] = 1.0
    picked = random_latents(f, 3, seed=0)
    assert len(picked) == 3 and set(picked) <= {1, 3, 5, 7}
    np.testing.assert_array_equal(picked, random_latents(f, 3, seed=0))
    assert len(random_latents(f, 10, seed=0)) == 4


def test_pool_by_doc(tmp_path):
    from safetensors.torch import save_file

    from saeflow.activations import ActivationStore, Manifest, Shard
    from saeflow.io import write_json

    acts = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    save_file(
        {
            "acts": acts.half(),
            "token_ids": torch.zeros(3, dtype=torch.int32),
            "doc_index": torch.tensor([0, 0, 1], dtype=torch.int32),
            "position": torch.tensor([1, 2, 1], dtype=torch.int32),
        },
        str(tmp_path / "shard_00000.safetensors"),
    )
    manifest = Manifest(
        model="m",
        layer=0,
        d_model=2,
        dtype="float16",
        n_tokens=3,
        shards=(Shard("shard_00000.safetensors", 3),),
        docs=("a", "b"),
        max_tokens=3,
        max_length=4,
        batch_size=1,
        mean_norm=1.0,
        elapsed_s=0.0,
        tokens_per_s=0.0,
    )
    write_json(tmp_path / "manifest.json", manifest.to_dict())
    store = ActivationStore(tmp_path / "manifest.json")
    np.testing.assert_allclose(pool_by_doc(store, 2).numpy(), [[2, 1], [5, 5]])
    np.testing.assert_allclose(
        pool_by_doc(store, 2, fn=lambda a: a.sum(1, keepdim=True)).numpy(), [[3], [10]]
    )


# --------------------------------------------------------------------------- the whole study on real bios


@pytest.mark.skipif(
    not SURGEON_NURSE.is_file(), reason="real surgeon/nurse subset (../shared/data) is absent"
)
@pytest.mark.skipif(
    not (SMOLLM2 / "config.json").is_file(), reason="prepared SmolLM2 (resources/models) is absent"
)
def test_whole_study_on_real_surgeon_nurse_bios(tmp_path):
    """Real bios, real LM (early layer, short texts), a tiny TopK SAE trained on the sets' own tokens."""
    import pandas as pd

    from saeflow.activations import ActivationStore, extract_activations
    from saeflow.models.causal_lm import load_lm
    from saeflow.sae import SAEConfig, load_sae
    from saeflow.studies.bias_in_bios.debias import check_docs
    from saeflow.studies.bias_in_bios.study import labelled, main_table, make_sets, scr_table
    from saeflow.train import TrainConfig, train_sae

    torch.set_num_threads(2)
    bib = {
        "data": {"path": str(SURGEON_NURSE)},
        "professions": ["surgeon", "nurse"],
        "mask": {},
        "ambiguous_per_profession": 60,
        "test_per_group": 25,
        "oracle_per_group": 40,
    }
    sets, record = make_sets(bib, seed=0, resources_dir=tmp_path)
    assert record["masked"] is False and record["pool"]["A/F"] == 454
    lm = load_lm(SMOLLM2)
    pooled, stores = {}, {}
    for name in ("ambiguous", "test", "oracle"):
        frame = getattr(sets, name)
        docs = frame[["id", "text"]].to_dict("records")
        extract_activations(
            lm,
            docs,
            4,
            tmp_path / name,
            max_tokens=len(docs) * 64,
            batch_size=16,
            max_length=64,
            shard_rows=4096,
            progress=False,
        )
        stores[name] = ActivationStore(tmp_path / name / "manifest.json")
        check_docs(stores[name], frame.id.tolist())
        pooled[name] = labelled(frame, pool_by_doc(stores[name], len(frame)).numpy())
    train_sae(
        SAEConfig("topk", d_in=lm.d_model, d_sae=512, k=16),
        TrainConfig(lr=2e-3, batch_size=256, epochs=3, warmup_steps=5, checkpoint_every=0),
        stores["ambiguous"],
        tmp_path / "sae",
    )
    sae = load_sae(tmp_path / "sae")  # as the workflow sees it: weights act on raw activations
    with torch.no_grad():
        f = {n: pool_by_doc(s, len(s.manifest.docs), fn=sae.encode).numpy() for n, s in stores.items()}
    W_dec = sae.W_dec.detach().double().numpy()
    cfg = ShiftConfig(n_latents=10, scr_n=(2, 10), gender_folds=3)
    base_rows = baseline_rows(pooled["ambiguous"], pooled["test"], pooled["oracle"], cfg)
    base = {r["method"]: r for r in base_rows}
    shift = shift_study(
        "GSAE",
        pooled["ambiguous"],
        pooled["test"],
        pooled["oracle"],
        f["ambiguous"],
        f["test"],
        f["oracle"],
        W_dec,
        base,
        cfg,
    )
    result = {"rows": shift.rows, "scr": shift.scr}
    table = main_table(base_rows, [result])
    assert table.method.tolist() == [
        "Original",
        "Random ablation (GSAE)",
        "Random ablation (GSAE) + retrain",
        "GSAE SHIFT",
        "GSAE SHIFT + retrain",
        "GSAE SHIFT (IG)",
        "GSAE SHIFT (IG) + retrain",
        "Oracle",
    ]
    assert list(table.columns[:5]) == [
        "method",
        "profession_acc",
        "gender_acc",
        "worst_group_acc",
        "gender_probe_acc",
    ]
    values = table[["profession_acc", "gender_acc", "worst_group_acc", "gender_probe_acc"]].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert base["Oracle"]["worst_group_acc"] >= base["Original"]["worst_group_acc"]
    assert base["Original"]["gender_acc"] > 0.5  # the ambiguous probe leans on gender
    scr = scr_table([result])
    assert len(scr) == 6 and set(scr.n) == {2, 10} and pd.api.types.is_float_dtype(scr.scr)
