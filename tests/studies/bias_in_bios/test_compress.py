"""Compressed SAEs: frequency counting, the kept set and the slice (hand-made tiny SAEs)."""

import numpy as np
import pytest
import torch

from saeflow.errors import ConfigError
from saeflow.sae import SAEConfig, load_sae, make_sae
from saeflow.studies.bias_in_bios.compress import (
    CompressConfig,
    FiringCounter,
    compress,
    kept_latents,
    slice_sae,
)
from saeflow.studies.bias_in_bios.specs import compressed_label, compressed_study_saes


def tiny(arch: str, d_sae: int = 8, k: int = 3, seed: int = 0):
    sae = make_sae(SAEConfig(arch, d_in=4, d_sae=d_sae, k=k), seed=seed)
    with torch.no_grad():
        sae.b_dec.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        sae.b_enc.copy_(torch.linspace(-0.2, 0.2, d_sae))
    return sae


def test_kept_latents_most_frequent_ties_to_lower_index():
    # frequencies 0.1 0.5 0.5 0.0 0.9 -> the top 3 are 4 (0.9), 1 and 2 (0.5, tie: lower index first)
    assert kept_latents(np.array([0.1, 0.5, 0.5, 0.0, 0.9]), 3).tolist() == [1, 2, 4]
    assert kept_latents(np.array([0.2, 0.2, 0.2]), 2).tolist() == [0, 1]


def test_firing_counter_counts_rows_per_latent():
    # rows [1,0,2], [0,0,3], [4,0,0] (identity encoder): latent 0 fires on 2/3 rows, 1 on none, 2 on 2/3
    counter = FiringCounter(lambda a: a)
    counter(torch.tensor([[1.0, 0, 2], [0, 0, 3]]))
    out = counter(torch.tensor([[4.0, 0, 0]]))
    assert out.shape == (1, 3)
    np.testing.assert_allclose(counter.frequency.numpy(), [2 / 3, 0, 2 / 3])


def test_relu_slice_reproduces_the_kept_latents_and_keeps_b_dec():
    sae = tiny("relu")
    kept = [1, 4, 6]
    small = slice_sae(sae, kept).sae
    assert small.cfg.d_sae == 3
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(small.encode(x), sae.encode(x)[:, kept])
        torch.testing.assert_close(small.W_dec, sae.W_dec[kept])
        torch.testing.assert_close(small.b_dec, sae.b_dec)
        # decode of the kept latents = the full decode with every other latent zeroed
        f = sae.encode(x)
        zeroed = torch.zeros_like(f)
        zeroed[:, kept] = f[:, kept]
        torch.testing.assert_close(small.decode(small.encode(x)), sae.decode(zeroed))


def test_topk_slice_keeps_k_and_matches_where_the_active_latents_are_kept():
    sae = tiny("topk", d_sae=8, k=2)
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        f = sae.encode(x)
    active = sorted(set(torch.nonzero(f[0] > 0).flatten().tolist()))
    # the kept set holds token 0's active latents (plus two others): its latents are the full SAE's there
    kept = sorted({*active, *[i for i in range(8) if i not in active][:2]})
    small = slice_sae(sae, kept).sae
    assert small.cfg.k == 2 and small.cfg.d_sae == len(kept)
    with torch.no_grad():
        torch.testing.assert_close(small.encode(x[:1]), f[:1, kept])
        # every token: the sliced TopK keeps the k largest of the kept pre-activations
        pre = sae.pre_acts(x)[:, kept]
        top = torch.topk(pre, 2, dim=1).indices
        assert (small.encode(x) > 0).sum(1).le(2).all()
        assert all(set(torch.nonzero(row > 0).flatten().tolist()) <= set(t.tolist()) for row, t in
                   zip(small.encode(x), top))  # fmt: skip
    # k is capped at the kept latents
    assert slice_sae(sae, [3]).sae.cfg.k == 1


def test_batchtopk_threshold_is_sliced_and_the_slice_saves_and_loads(tmp_path):
    sae = tiny("batchtopk", d_sae=8, k=2)
    with torch.no_grad():
        sae.threshold.copy_(torch.linspace(0.0, 0.7, 8))
    kept = [0, 3, 7]
    small = slice_sae(sae, kept).sae
    torch.testing.assert_close(small.threshold, sae.threshold[kept])
    small.save(tmp_path)
    back = load_sae(tmp_path)
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(back.encode(x), sae.encode(x)[:, kept])


def test_compress_keeps_an_eighth_of_the_most_frequent():
    sae = tiny("topk", d_sae=16, k=4)
    freq = np.arange(16) / 16.0  # latent 15 most frequent
    result = compress(sae, freq, CompressConfig(fraction=0.125))
    assert result.sliced.kept.tolist() == [14, 15] and result.sliced.sae.cfg.k == 2
    record = result.record()
    assert record["n_kept"] == 2 and record["kept_share_of_firings"] == pytest.approx((14 + 15) / 120)


def test_unsliceable_architecture_and_bad_fraction():
    with pytest.raises(ConfigError, match="fraction"):
        CompressConfig(fraction=0.0)
    sae = make_sae(SAEConfig("matryoshka", d_in=4, d_sae=64, k=2), seed=0)
    with pytest.raises(ConfigError, match="cannot slice a matryoshka"):
        slice_sae(sae, [0, 1])


def test_compressed_rows_follow_the_compared_saes():
    compared = [("GSAE", "gsae"), ("OrtSAE", "ortsae_x")]
    config = {"bias_in_bios": {"compress": {"fraction": 0.125, "saes": ["GSAE", "SSAE"]}}}
    assert compressed_study_saes(config, compared) == [("GSAE comp. 1/8", "gsae")]
    assert compressed_study_saes({"bias_in_bios": {"compress": None}}, compared) == []
    assert compressed_label("SSAE", 0.25) == "SSAE comp. 1/4"
