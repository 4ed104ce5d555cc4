import math

import pytest
import torch
import torch.nn.functional as F

from saeflow.errors import DataError
from saeflow.metrics import (
    CEAccumulator,
    MetricWarning,
    ReconstructionAccumulator,
    ce_loss_score,
    decoder_cosine_stats,
    explained_variance,
    fvu,
    kl_divergence,
    l0,
    next_token_ce,
    perplexity,
    prediction_mask,
)

# --------------------------------------------------------------------------- L0 / FVU


def test_l0_hand():
    # token 0 has 1 non-zero latent, token 1 has 2 → mean 1.5 (negative values count as firing)
    f = torch.tensor([[0.0, 2.0, 0.0], [1.0, -1.0, 0.0]])
    assert l0(f) == 1.5
    # leading dims are flattened: same tokens as [1, 2, 3]
    assert l0(f.unsqueeze(0)) == 1.5


def test_fvu_hand_is_about_the_mean_not_zero():
    # x = [[1,0],[3,0]] → μ = [2,0]; Σ‖x−μ‖² = 1 + 1 = 2.
    # x̂ differs only in one entry by 1 → Σ‖x−x̂‖² = 1 → FVU = 1/2.
    # The wrong (variance about zero) formula: Σ‖x‖² = 1 + 9 = 10 → 1/10 = 0.1.
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    x_hat = torch.tensor([[1.0, 0.0], [3.0, 1.0]])
    assert fvu(x, x_hat) == 0.5
    assert explained_variance(x, x_hat) == 0.5
    assert fvu(x, x_hat) != pytest.approx(0.1)


def test_fvu_perfect_and_mean_reconstruction():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    assert fvu(x, x.clone()) == 0.0
    # reconstructing every token by the mean explains nothing: FVU = 1
    assert fvu(x, x.mean(0).expand_as(x)) == pytest.approx(1.0, abs=1e-12)


def test_fvu_constant_set_is_nan_with_reason():
    x = torch.ones(4, 3)
    with pytest.warns(MetricWarning, match="identical"):
        assert math.isnan(fvu(x, x + 1))


def test_fvu_rejects_shape_mismatch_and_empty():
    with pytest.raises(ValueError, match="same shape"):
        fvu(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(DataError):
        fvu(torch.zeros(0, 3), torch.zeros(0, 3))


# --------------------------------------------------------------------------- streaming reconstruction


def test_accumulator_hand_values():
    # Same x, x̂ as the FVU hand test; latents: token 0 fires latent 1, token 1 fires latents 0 and 1.
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    x_hat = torch.tensor([[1.0, 0.0], [3.0, 1.0]])
    f = torch.tensor([[0.0, 2.0, 0.0], [1.0, 1.0, 0.0]])
    acc = ReconstructionAccumulator()
    acc.update(x[:1], x_hat[:1], f[:1])
    acc.update(x[1:], x_hat[1:], f[1:])
    r = acc.result()
    assert r.n_tokens == 2
    assert r.l0 == 1.5
    assert r.mse == 0.25  # Σ err² = 1 over N·d = 4 elements
    assert r.fvu == 0.5  # streaming over batches of 1 token still centres on μ = [2, 0]
    assert r.explained_variance == 0.5
    assert r.dead_fraction == pytest.approx(1 / 3)  # latent 2 never fires
    # latent 0 fires on 1/2, latent 1 on 2/2 of tokens, both > 0.1 → 2/3 dense
    assert r.dense_fraction == pytest.approx(2 / 3)
    assert acc.fire_counts.tolist() == [1, 2, 0]


def test_dead_and_dense_counts():
    # 10 tokens, 4 latents: latent 0 never fires (dead); latent 1 fires on 1/10 = 0.1 (not dense:
    # dense means > 0.1); latent 2 on 2/10 (dense); latent 3 on 10/10 (dense).
    # → dead 1/4, dense 2/4, L0 = (0 + 1 + 2 + 10) / 10 = 1.3
    f = torch.zeros(10, 4)
    f[3, 1] = 1.0
    f[[0, 9], 2] = 0.5
    f[:, 3] = 2.0
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(0))
    acc = ReconstructionAccumulator()
    acc.update(x[:3], x[:3], f[:3])
    acc.update(x[3:], x[3:], f[3:])
    r = acc.result()
    assert acc.fire_counts.tolist() == [0, 1, 2, 10]
    assert r.dead_fraction == 0.25
    assert r.dense_fraction == 0.5
    assert r.l0 == pytest.approx(1.3)
    assert r.fvu == 0.0
    # a higher threshold: only latent 3 (fires on 100%) is dense
    acc2 = ReconstructionAccumulator(dense_threshold=0.5)
    acc2.update(x, x, f)
    assert acc2.result().dense_fraction == 0.25


def test_streaming_equals_one_shot_uneven_batches():
    g = torch.Generator().manual_seed(1)
    n, d, m = 100, 7, 13
    x = torch.randn(n, d, generator=g) * 3 + torch.arange(d) * 5.0  # non-zero mean per dimension
    x_hat = x + 0.4 * torch.randn(n, d, generator=g)
    f = torch.relu(torch.randn(n, m, generator=g) - 1.0)
    acc = ReconstructionAccumulator()
    start = 0
    for size in (1, 17, 5, 0, 77):
        acc.update(x[start : start + size], x_hat[start : start + size], f[start : start + size])
        start += size
    assert start == n
    r = acc.result()
    assert r.n_tokens == n
    assert r.fvu == pytest.approx(fvu(x, x_hat), rel=1e-12)
    x64, xh64 = x.double(), x_hat.double()
    ref = (x64 - xh64).square().sum() / (x64 - x64.mean(0)).square().sum()
    assert r.fvu == pytest.approx(ref.item(), rel=1e-12)
    assert r.mse == pytest.approx((x64 - xh64).square().mean().item(), rel=1e-12)
    assert r.l0 == pytest.approx(l0(f), rel=1e-12)
    assert acc.fire_counts.tolist() == (f != 0).sum(0).tolist()

    # one batch gives exactly the one-shot value
    one = ReconstructionAccumulator()
    one.update(x, x_hat, f)
    assert one.result().fvu == fvu(x, x_hat)


def test_streaming_fvu_is_stable_with_large_offsets():
    # |μ| ≫ σ (like residual-stream outlier dimensions): Σx² − N‖μ‖² would lose everything in float64
    # at offset 1e8 (Σx² ≈ 1e16 · N · d), the merged centred sums do not.
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 4, generator=g, dtype=torch.float64)
    x_hat = x + 0.5 * torch.randn(300, 4, generator=g, dtype=torch.float64)
    expected = fvu(x, x_hat)
    acc = ReconstructionAccumulator()
    for chunk in torch.split(torch.arange(300), 37):
        acc.update(x[chunk] + 1e8, x_hat[chunk] + 1e8, x[chunk])
    assert acc.result().fvu == pytest.approx(expected, rel=1e-6)


def test_accumulator_accepts_half_3d_and_sparse_latents():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 6, generator=g).half()
    x_hat = (x.float() + 0.1 * torch.randn(2, 5, 6, generator=g)).half()
    f = torch.relu(torch.randn(2, 5, 9, generator=g))
    dense = ReconstructionAccumulator()
    dense.update(x, x_hat, f)
    sparse = ReconstructionAccumulator()
    sparse.update(x, x_hat, f.reshape(10, 9).to_sparse())
    assert dense.result() == sparse.result()
    assert dense.result().fvu == pytest.approx(fvu(x.double(), x_hat.double()), rel=1e-12)


def test_accumulator_errors():
    acc = ReconstructionAccumulator()
    with pytest.raises(DataError, match="no tokens"):
        acc.result()
    with pytest.raises(ValueError, match="latents cover"):
        acc.update(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(4, 5))
    acc.update(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="columns"):
        acc.update(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 6))


# --------------------------------------------------------------------------- language-model metrics


def _log(*p):
    return torch.tensor(p, dtype=torch.float64).log()


def test_next_token_ce_uniform_is_ln_v():
    # V = 4, uniform logits at position 0 predicting token 1 → CE = ln 4
    logits = torch.zeros(1, 2, 4, dtype=torch.float64)
    ids = torch.tensor([[0, 2]])
    total, n = next_token_ce(logits, ids, torch.tensor([[True]]))
    assert n == 1
    assert total == pytest.approx(math.log(4), abs=1e-12)


def test_next_token_ce_alignment_and_mask():
    # position 0: p = [1,2,3,4]/10, next token (position 1) is 3 → NLL = −ln 0.4 = ln 2.5
    # position 1: uniform over 4, next token (position 2) is 0 → NLL = ln 4
    # position 2: no next token; its logits never count.
    # (Scoring logits[t] against ids[t] instead would give −ln 0.2 = ln 5 at position 0.)
    logits = torch.stack([_log(1, 2, 3, 4), _log(1, 1, 1, 1), _log(9, 1, 1, 1)]).unsqueeze(0)
    ids = torch.tensor([[1, 3, 0]])
    s = next_token_ce(logits, ids, torch.tensor([[True, True]]))
    assert s.n == 2
    assert s.sum_nll == pytest.approx(math.log(10), abs=1e-12)  # ln 2.5 + ln 4
    s = next_token_ce(logits, ids, torch.tensor([[True, False]]))
    assert (s.sum_nll, s.n) == (pytest.approx(math.log(2.5), abs=1e-12), 1)
    assert next_token_ce(logits, ids, torch.tensor([[False, False]])) == (0.0, 0)
    with pytest.raises(ValueError, match="prediction_mask"):
        next_token_ce(logits, ids, torch.ones(1, 3, dtype=torch.bool))


def test_prediction_mask_right_padding():
    # two sequences, right-padded: lengths 4 and 2
    am = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert prediction_mask(am).tolist() == [[True, True, True], [True, False, False]]
    assert prediction_mask(am, skip_first=1).tolist() == [[False, True, True], [False, False, False]]


def test_kl_zero_for_identical_and_two_class_hand_value():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(4))
    s = kl_divergence(logits, logits.clone(), torch.ones(2, 3, dtype=torch.bool))
    assert s.n == 6
    assert s.sum_kl == pytest.approx(0.0, abs=1e-6)
    # p = softmax([0, 0]) = [1/2, 1/2], q = softmax([0, ln 3]) = [1/4, 3/4]
    # KL(p‖q) = ½ ln(½/¼) + ½ ln(½/¾) = ½ ln(4/3) ≈ 0.1438
    # (the reverse, KL(q‖p) = ¼ ln ½ + ¾ ln 3/2 ≈ 0.1308, would fail)
    p = torch.tensor([[[0.0, 0.0]]], dtype=torch.float64)
    q = torch.tensor([[[0.0, math.log(3)]]], dtype=torch.float64)
    s = kl_divergence(p, q, torch.tensor([[True]]))
    assert s.n == 1
    assert s.sum_kl == pytest.approx(0.5 * math.log(4 / 3), abs=1e-12)
    assert s.sum_kl > 0


def test_kl_handles_zero_probabilities():
    # p = [1, 0] (second logit −inf), q = [1/2, 1/2] → KL = 1 · ln(1 / ½) = ln 2; the p = 0 term is 0
    p = torch.tensor([[[0.0, -math.inf]]], dtype=torch.float64)
    q = torch.zeros(1, 1, 2, dtype=torch.float64)
    assert kl_divergence(p, q, torch.tensor([[True]])).sum_kl == pytest.approx(math.log(2), abs=1e-12)


def test_ce_loss_score_and_perplexity():
    # clean 2.0, sae 2.5, zero-ablated 7.0 → (7 − 2.5) / (7 − 2) = 4.5 / 5 = 0.9
    assert ce_loss_score(2.0, 2.5, 7.0) == pytest.approx(0.9)
    assert ce_loss_score(2.0, 2.0, 7.0) == 1.0
    assert ce_loss_score(2.0, 7.0, 7.0) == 0.0
    with pytest.warns(MetricWarning, match="CE_zero − CE_clean"):
        assert math.isnan(ce_loss_score(3.0, 3.5, 3.0))
    assert perplexity(math.log(4)) == pytest.approx(4.0)
    assert perplexity(1e4) == math.inf


def test_ce_accumulator_matches_reference_across_batches():
    g = torch.Generator().manual_seed(5)
    V = 11
    batches = []
    for b, t in ((2, 6), (3, 4), (1, 9)):
        clean = torch.randn(b, t, V, generator=g)
        sae = clean + 0.7 * torch.randn(b, t, V, generator=g)
        ids = torch.randint(0, V, (b, t), generator=g)
        am = (torch.rand(b, t, generator=g) < 0.8).long().cummin(dim=1).values  # right padding
        am[:, :2] = 1
        batches.append((clean, sae, ids, prediction_mask(am)))

    acc = CEAccumulator(chunk=3)  # forces several chunks per batch
    nll_c, nll_s, kl, n = [], [], [], 0
    for clean, sae, ids, mask in batches:
        acc.update(clean, sae, ids, mask)
        lc, ls, tg = clean[:, :-1][mask], sae[:, :-1][mask], ids[:, 1:][mask]
        nll_c.append(F.cross_entropy(lc.double(), tg, reduction="sum"))
        nll_s.append(F.cross_entropy(ls.double(), tg, reduction="sum"))
        kl.append(
            F.kl_div(
                ls.double().log_softmax(-1), lc.double().log_softmax(-1), log_target=True, reduction="sum"
            )
        )
        n += int(mask.sum())
        # the one-batch functions agree with the reference too
        assert next_token_ce(sae, ids, mask).sum_nll == pytest.approx(nll_s[-1].item(), rel=1e-5)
        assert kl_divergence(clean, sae, mask).sum_kl == pytest.approx(kl[-1].item(), rel=1e-5)
    r = acc.result()
    ce_c, ce_s, kl_ = (sum(v).item() / n for v in (nll_c, nll_s, kl))
    assert r.n_tokens == n
    assert r.ce_clean == pytest.approx(ce_c, rel=1e-5)
    assert r.ce_sae == pytest.approx(ce_s, rel=1e-5)
    assert r.kl == pytest.approx(kl_, rel=1e-5)
    assert r.perplexity_clean == pytest.approx(math.exp(r.ce_clean))
    assert r.perplexity_sae == pytest.approx(math.exp(r.ce_sae))
    assert r.delta_ce == pytest.approx(r.ce_sae - r.ce_clean)


def test_ce_accumulator_identical_logits_and_empty():
    acc = CEAccumulator()
    with pytest.raises(DataError, match="no predictions"):
        acc.result()
    logits = torch.zeros(1, 3, 4, dtype=torch.float64)  # uniform over 4 → CE = ln 4 everywhere
    acc.update(logits, logits, torch.tensor([[0, 1, 2]]), torch.tensor([[True, True]]))
    r = acc.result()
    assert r.n_tokens == 2
    assert r.ce_clean == pytest.approx(math.log(4), abs=1e-12)
    assert r.ce_sae == r.ce_clean and r.delta_ce == 0.0 and r.kl == 0.0
    assert r.perplexity_clean == pytest.approx(4.0)


# --------------------------------------------------------------------------- decoder geometry


def test_decoder_orthonormal_rows():
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(6)))
    geo = decoder_cosine_stats(q.T[:5] * 3.0)  # orthogonal rows, any norm
    assert geo.max_abs_cos.shape == (5,)
    assert geo.max_abs_cos.max().item() < 1e-6
    assert geo.mean_max_abs_cos < 1e-6
    assert geo.distinct_fraction == 1.0


def test_decoder_parallel_rows():
    # rows 0 and 1 are parallel (|cos| = 1), row 2 is anti-parallel to row 3 (|cos| = 1 by the abs),
    # row 4 is orthogonal to all → max |cos| = [1, 1, 1, 1, 0], mean 4/5, distinct 1/5
    w = torch.tensor([[1.0, 0, 0, 0], [2.0, 0, 0, 0], [0, 1.0, 0, 0], [0, -3.0, 0, 0], [0, 0, 0, 1.0]])
    geo = decoder_cosine_stats(w)
    assert geo.max_abs_cos.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.0], abs=1e-6)
    assert geo.mean_max_abs_cos == pytest.approx(0.8, abs=1e-6)
    assert geo.distinct_fraction == pytest.approx(0.2)
    # 45°: cos = 1/√2 ≈ 0.707 → not distinct at 0.5, distinct at threshold 0.8
    w2 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert decoder_cosine_stats(w2).distinct_fraction == 0.0
    assert decoder_cosine_stats(w2, threshold=0.8).distinct_fraction == 1.0
    assert decoder_cosine_stats(w2).max_abs_cos.tolist() == pytest.approx([2**-0.5] * 2, abs=1e-6)


def test_decoder_chunked_equals_unchunked():
    w = torch.randn(50, 8, generator=torch.Generator().manual_seed(7))
    full = decoder_cosine_stats(w)
    for chunk in (1, 7, 49):
        part = decoder_cosine_stats(w, chunk=chunk)
        torch.testing.assert_close(part.max_abs_cos, full.max_abs_cos, atol=1e-6, rtol=0)
        assert part.distinct_fraction == full.distinct_fraction
    # against a direct computation of the full cosine matrix
    wn = F.normalize(w.double(), dim=1)
    cos = (wn @ wn.T).abs().fill_diagonal_(0)
    torch.testing.assert_close(full.max_abs_cos.double(), cos.amax(1), atol=1e-6, rtol=0)


def test_decoder_rejects_single_row():
    with pytest.raises(ValueError, match="m ≥ 2"):
        decoder_cosine_stats(torch.ones(1, 4))


def test_core_metrics_table_carries_the_saelens_convention(tmp_path):
    from saeflow.io import write_json
    from saeflow.tables import core_metrics_table

    rows = [
        {
            "sae": s,
            "eval_set": "general",
            "fvu": 0.3,
            "ce_loss_score": 0.9,
            "ce_loss_score_saelens": 0.8,
            "explained_variance_saelens": 0.98,
            "provenance": {},
        }
        for s in ("b", "a")
    ]
    paths = []
    for r in rows:
        paths.append(tmp_path / f"{r['sae']}.json")
        write_json(paths[-1], r)
    df = core_metrics_table(paths)
    assert list(df["sae"]) == ["a", "b"]
    assert {"ce_loss_score_saelens", "explained_variance_saelens"} <= set(df.columns)
    assert "provenance" not in df.columns


def test_fire_counts_by_hand_on_sparse_and_dense_latents():
    from saeflow.metrics import _fire_counts_of

    sparse = torch.zeros(4, 100)  # 4 of 400 entries fire: counted from the column ids
    sparse[0, 3], sparse[1, 3], sparse[2, 99], sparse[3, 0] = 1.0, 2.0, -1.0, 0.5
    expected = torch.zeros(100, dtype=torch.int64)
    expected[3], expected[99], expected[0] = 2, 1, 1
    assert torch.equal(_fire_counts_of(sparse), expected)
    dense = torch.tensor([[1.0, 0.0, 2.0], [3.0, 4.0, 0.0]])  # by the column reduction
    assert torch.equal(_fire_counts_of(dense), torch.tensor([2, 1, 1]))
