"""The sparse TopK training kernels (saeflow.sae.kernels) against the straightforward dense computation."""

import pytest
import torch
from store_helpers import sparse_data, write_store

from saeflow.activations import ActivationStore
from saeflow.sae import SAEConfig, make_sae
from saeflow.sae.kernels import (
    FlatCodes,
    _batch_topk_entries,
    _threshold_guess,
    batch_topk_encode,
    block_flat_decode,
    coalesce_latents,
    decode_dense_codes,
    flat_decode,
    flat_gather_dot,
    flat_scatter_rows,
    gather_dot,
    relu_encode,
    scatter_rows,
    sparse_decode,
    to_sparse_latents,
    topk_encode,
)
from saeflow.train import TrainConfig, train_sae


def _pair(d=16, m=64, k=4, dead=0, **cfg):
    """The same random TopK SAE twice: fast (default) and dense (extra.fast: false); `dead` latents dead."""
    spec = {"architecture": "topk", "d_in": d, "d_sae": m, "k": k, "dead_tokens": 10, **cfg}
    fast = make_sae(spec, seed=0)
    with torch.no_grad():
        fast.b_enc.normal_(0, 0.3)
        fast.b_dec.normal_()
    dense = make_sae({**spec, "extra": {"fast": False}})
    dense.load_state_dict(fast.state_dict())
    for sae in (fast, dense):
        sae.tokens_since_fired[:dead] = 100
    return fast, dense


# --------------------------------------------------------------------------- kernels by hand


def test_scatter_rows_by_hand():
    # token 0 sends 2·src0 to row 2 and 1·src0 to row 0; token 1 sends 3·src1 to row 2 -> row 1 stays empty
    indices = torch.tensor([[2, 0], [2, 3]])
    weights = torch.tensor([[2.0, 1.0], [3.0, 0.0]])
    src = torch.tensor([[1.0, 10.0], [100.0, 1000.0]])
    out = scatter_rows(indices, weights, src, 4)
    assert out.tolist() == [[1.0, 10.0], [0.0, 0.0], [302.0, 3020.0], [0.0, 0.0]]


@pytest.mark.parametrize("n_rows", [50, 70_000])  # 16-bit radix sort, and 32-bit keys
def test_scatter_rows_matches_dense(n_rows):
    g = torch.Generator().manual_seed(0)
    indices = torch.stack([torch.randperm(n_rows, generator=g)[:5] for _ in range(40)])
    weights = torch.randn(40, 5, generator=g, dtype=torch.float64)
    src = torch.randn(40, 3, generator=g, dtype=torch.float64)
    dense = torch.zeros(40, n_rows, dtype=torch.float64).scatter_(1, indices, weights)
    assert torch.allclose(scatter_rows(indices, weights, src, n_rows), dense.T @ src)


def test_gather_dot_by_hand():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rows = torch.tensor([[2.0, 3.0]])
    # ⟨[2,3], table[2]⟩ = 5, ⟨[2,3], table[0]⟩ = 2
    assert gather_dot(torch.tensor([[2, 0]]), table, rows).tolist() == [[5.0, 2.0]]


def test_sparse_decode_and_encode_pass_gradcheck():
    g = torch.Generator().manual_seed(1)
    W_dec = torch.randn(12, 5, generator=g, dtype=torch.float64, requires_grad=True)
    values = torch.rand(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    indices = torch.stack([torch.randperm(12, generator=g)[:3] for _ in range(6)])
    assert torch.autograd.gradcheck(lambda v, w: sparse_decode(v, indices, w), (values, W_dec))

    x = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    W_enc = torch.randn(5, 12, generator=g, dtype=torch.float64, requires_grad=True)
    b_enc = torch.randn(12, generator=g, dtype=torch.float64, requires_grad=True)
    b_dec = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    dead = torch.arange(12) >= 7

    def encode(x, W_enc, b_enc, b_dec):
        codes = topk_encode(x, W_enc, b_enc, b_dec, 3, dead=dead, k_aux=2, block=4)  # 2 blocks of rows
        return codes.values, codes.aux_values

    assert torch.autograd.gradcheck(encode, (x, W_enc, b_enc, b_dec))


def test_topk_encode_selects_like_dense_topk():
    g = torch.Generator().manual_seed(2)
    x, W = torch.randn(9, 4, generator=g), torch.randn(4, 10, generator=g)
    b_enc, b_dec = torch.randn(10, generator=g), torch.randn(4, generator=g)
    dead = torch.arange(10) % 3 == 0
    codes = topk_encode(x, W, b_enc, b_dec, 3, dead=dead, k_aux=2, block=4)
    pre = (x - b_dec) @ W + b_enc
    ref = pre.topk(3, dim=-1)
    assert torch.equal(codes.indices.sort(-1).values, ref.indices.sort(-1).values)
    assert torch.allclose(codes.values.sort(-1).values, ref.values.relu().sort(-1).values, atol=1e-6)
    ref_aux = pre.masked_fill(~dead, float("-inf")).topk(2, dim=-1)
    assert dead[codes.aux_indices].all()
    assert torch.equal(codes.aux_indices.sort(-1).values, ref_aux.indices.sort(-1).values)


def test_sparse_latents_and_coalesce():
    values = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    indices = torch.tensor([[3, 1], [0, 2]])
    latents = to_sparse_latents(values, indices, 4)
    assert latents.to_dense().tolist() == [[0.0, 2.0, 0.0, 1.0], [3.0, 0.0, 0.0, 0.0]]
    c = coalesce_latents(latents)
    ref = latents.coalesce()
    assert c.is_coalesced()
    assert torch.equal(c.indices(), ref.indices()) and torch.equal(c.values(), ref.values())


# --------------------------------------------------------------------------- the SAE: fast path == dense path


@pytest.mark.parametrize("dead", [0, 40], ids=["no-dead", "auxk"])
def test_fast_forward_values_match_dense(dead):
    fast, dense = _pair(dead=dead)
    x = torch.randn(32, 16)
    a, b = fast.training_loss(x), dense.training_loss(x)
    assert a.latents.is_sparse and not b.latents.is_sparse
    assert torch.allclose(a.latents.to_dense(), b.latents, atol=1e-6)
    assert torch.allclose(a.recon, b.recon, atol=1e-5)
    assert torch.allclose(a.per_token, b.per_token, atol=1e-4)
    assert (a.aux.item() > 0) == (dead > 0)
    assert a.aux.item() == pytest.approx(b.aux.item(), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("dead", [0, 40], ids=["no-dead", "auxk"])
@pytest.mark.parametrize("tilt", [0.0, 0.5])
def test_fast_gradients_of_all_parameters_match_dense(dead, tilt):
    from saeflow.sae.objectives import batch_objective

    fast, dense = _pair(dead=dead)
    x = torch.randn(32, 16)
    for sae in (fast, dense):
        terms = sae.training_loss(x)
        batch_objective(terms.per_token, terms.aux, tilt).backward()
    grads = dict(dense.named_parameters())
    for name, p in fast.named_parameters():
        ref = grads[name].grad
        assert p.grad is not None and p.grad.shape == ref.shape, name
        assert torch.allclose(p.grad, ref, rtol=1e-4, atol=1e-5), name


def test_input_gradient_matches_dense():
    fast, dense = _pair()
    x = torch.randn(8, 16)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast.training_loss(xa).per_token.sum().backward()
    dense.training_loss(xb).per_token.sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-4)


def test_sparse_dead_tracking_matches_dense():
    fast, dense = _pair()
    x = torch.randn(32, 16)
    fast.update_dead_tracking_(fast.training_loss(x).latents)
    dense.update_dead_tracking_(dense.training_loss(x).latents)
    assert torch.equal(fast.tokens_since_fired, dense.tokens_since_fired)


def _curve(tmp_path, fast: bool, steps: int = 20):
    store = ActivationStore(write_store(tmp_path / "acts", sparse_data(steps * 64, 16, 48, 3, seed=3)))
    # dead_tokens 128: latents go dead within the run, so AuxK is part of the curve
    cfg = make_sae(
        {"architecture": "topk", "d_in": 16, "d_sae": 64, "k": 4, "dead_tokens": 128, "extra": {"fast": fast}}
    ).cfg
    tcfg = TrainConfig(
        lr=3e-3, batch_size=64, epochs=1, warmup_steps=2, checkpoint_every=0, log_every=1, seed=0
    )
    return train_sae(cfg, tcfg, store, tmp_path / ("fast" if fast else "dense")).metrics["history"]


def test_fast_and_dense_give_the_same_20_step_loss_curve(tmp_path):
    fast, dense = _curve(tmp_path, True), _curve(tmp_path, False)
    assert len(fast) == len(dense) == 20
    assert any(p["aux"] > 0 for p in dense)  # AuxK took part
    for a, b in zip(fast, dense, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4), a["step"]
        assert a["aux"] == pytest.approx(b["aux"], rel=1e-4, abs=1e-7), a["step"]
        assert a["l0"] == b["l0"]
    assert fast[-1]["loss"] < fast[0]["loss"]


# --------------------------------------------------------------------------- flat codes (BatchTopK family)


@pytest.mark.parametrize("skew", [0.0, 6.0], ids=["spread", "one-token-takes-most"])
def test_batch_topk_encode_and_flat_decode_pass_gradcheck(skew):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    x[2] *= 1 + skew  # with skew, token 2 holds more kept entries than its candidates (the pool's extra rows)
    x.requires_grad_(True)
    W_enc = torch.randn(5, 16, generator=g, dtype=torch.float64, requires_grad=True)
    b_enc = torch.randn(16, generator=g, dtype=torch.float64, requires_grad=True)
    centre = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    W_dec = torch.randn(16, 5, generator=g, dtype=torch.float64, requires_grad=True)
    dead = torch.arange(16) >= 12

    def encode_decode(x, W_enc, b_enc, centre, W_dec):
        codes = batch_topk_encode(x, W_enc, b_enc, centre, 2, dead=dead, k_aux=2, candidates=1)
        return flat_decode(codes.values, codes, W_dec), codes.aux_values

    assert torch.autograd.gradcheck(encode_decode, (x, W_enc, b_enc, centre, W_dec))
    codes = batch_topk_encode(x, W_enc, b_enc, centre, 2, candidates=1)
    dense = torch.relu((x - centre) @ W_enc + b_enc).detach()
    kept = dense.flatten().topk(16).values
    assert sorted(codes.values.tolist()) == pytest.approx(sorted(kept[kept > 0].tolist()))


def _kept(pre, k):
    values, rows, latents = _batch_topk_entries(pre, k, candidates=2)
    assert torch.equal(pre[rows, latents], values)
    return sorted(values.tolist())


def _reference_kept(pre, k):
    top = pre.flatten().topk(k * pre.shape[0]).values
    return sorted(top[top > 0].tolist())


def test_batch_topk_entries_are_exact_when_the_guess_holds_and_when_it_falls_back():
    pre = torch.randn(512, 1024, generator=torch.Generator().manual_seed(5))
    n_keep = 8 * 512
    guess = _threshold_guess(pre, n_keep)
    assert guess is not None and int((pre >= guess).sum()) >= n_keep  # the guessed threshold holds here
    assert _kept(pre, 8) == _reference_kept(pre, 8)
    # the sampled latents (every 16th) far above the rest: the guess is too high, the exact bound takes over
    skewed = pre.clone()
    skewed[:, ::16] += 100
    assert int((skewed >= _threshold_guess(skewed, n_keep)).sum()) < n_keep
    assert _kept(skewed, 8) == _reference_kept(skewed, 8)
    # fewer positive entries than k·N: every positive one, nothing else
    mostly_negative = -pre.abs()
    mostly_negative[3, 7] = 0.5
    mostly_negative[10, 200] = 2.0
    assert _kept(mostly_negative, 8) == [0.5, 2.0]


def test_flat_scatter_and_gather_by_hand():
    src = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    rows, latents = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 0, 1, 1])
    out = flat_scatter_rows(latents, rows, torch.tensor([1.0, 2.0, 3.0, 0.5]), src, 3)
    # latent 0 <- 2·src[0]; latent 1 <- 1·src[0] + 3·src[1] + 0.5·src[2]; latent 2 <- nothing
    assert out.tolist() == [[2.0, 0.0], [2.5, 7.5], [0.0, 0.0]]
    table = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    offsets = torch.tensor([0, 2, 3])
    assert flat_gather_dot(latents, rows, offsets, table, src).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_block_flat_decode_by_hand():
    # token 0: latents 0 (×2) and 3 (×1); token 1: nothing; token 2: latents 1 (×1) and 2 (×4)
    # blocks [0, 2) and [2, 4)
    W_dec = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    codes = FlatCodes(
        values=torch.tensor([2.0, 1.0, 1.0, 4.0]),
        rows=torch.tensor([0, 0, 2, 2]),
        latents=torch.tensor([0, 3, 1, 2]),
        offsets=torch.tensor([0, 2, 2]),
    )
    parts = block_flat_decode(codes, W_dec, [2, 4])
    assert parts.tolist() == [
        [[2.0, 0.0], [2.0, 0.0]],
        [[0.0, 0.0], [0.0, 0.0]],
        [[0.0, 1.0], [4.0, 4.0]],
    ]


def test_block_flat_decode_passes_gradcheck():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 5, generator=g, dtype=torch.float64)
    W_enc = torch.randn(5, 16, generator=g, dtype=torch.float64)
    b_enc = torch.randn(16, generator=g, dtype=torch.float64)
    codes = batch_topk_encode(x, W_enc, b_enc, torch.zeros(5, dtype=torch.float64), 3)
    W_dec = torch.randn(16, 5, generator=g, dtype=torch.float64, requires_grad=True)
    values = codes.values.detach().clone().requires_grad_(True)

    def decode(values, W_dec):
        return block_flat_decode(codes._replace(values=values), W_dec, [1, 4, 9, 16])

    assert torch.autograd.gradcheck(decode, (values, W_dec))
    blocks = [(0, 1), (1, 4), (4, 9), (9, 16)]
    in_block = [(codes.latents >= a) & (codes.latents < b) for a, b in blocks]
    masked = [flat_decode(values * mask, codes, W_dec) for mask in in_block]
    torch.testing.assert_close(decode(values, W_dec), torch.stack(masked, dim=1))


def test_relu_encode_passes_gradcheck():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    W_enc = torch.randn(5, 12, generator=g, dtype=torch.float64, requires_grad=True)
    b_enc = torch.randn(12, generator=g, dtype=torch.float64, requires_grad=True)
    centre = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    W_dec = torch.randn(12, 5, generator=g, dtype=torch.float64, requires_grad=True)

    def encode_decode(x, W_enc, b_enc, centre, W_dec):
        codes = relu_encode(x, W_enc, b_enc, centre)
        return flat_decode(codes.values, codes, W_dec)

    assert torch.autograd.gradcheck(encode_decode, (x, W_enc, b_enc, centre, W_dec))


def test_relu_sparse_and_dense_paths_give_the_same_loss_curve(tmp_path):
    """A ReLU SAE's training switches to the flat kernels once its L0 is under 5% of the latents: the losses,
    L0 and λ match the dense path's step for step (to float rounding)."""
    x = sparse_data(4096, 32, n_features=128, per_token=6, seed=0)
    store = ActivationStore(write_store(tmp_path / "acts", x, shard_rows=2048))
    curves = {}
    for fast in (True, False):
        extra = {"target_l0": 8, "l1_hold_steps": 50, "fast": fast}
        cfg = SAEConfig(architecture="relu", d_in=32, d_sae=512, l1_coefficient=0.3, extra=extra)
        tcfg = TrainConfig(lr=3e-3, batch_size=128, epochs=8, warmup_steps=5, checkpoint_every=0, log_every=1)
        curves[fast] = train_sae(cfg, tcfg, store, tmp_path / str(fast)).metrics["history"]
    sparse_steps = sum(p["l0"] < 0.05 * 512 for p in curves[True])
    assert sparse_steps > 50, sparse_steps  # the sparse path was taken
    for a, b in zip(curves[True], curves[False], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3), a["step"]
        assert a["l0"] == pytest.approx(b["l0"], abs=0.05), a["step"]
        assert a["l1"] == pytest.approx(b["l1"], rel=1e-3), a["step"]


# --------------------------------------------------------------------------- low-precision selection


def _separated(n=12, d=8, m=48, seed=5):
    """Inputs whose pre-activations are spread far apart (gaps ≫ bfloat16 rounding): a bfloat16 matmul picks
    the same latents as a float32 one."""
    g = torch.Generator().manual_seed(seed)
    x = torch.eye(d).repeat(n // d + 1, 1)[:n] * 3 + 0.01 * torch.randn(n, d, generator=g)
    W = torch.linspace(-2, 2, d * m).reshape(m, d).t()[:, torch.randperm(m, generator=g)].contiguous()
    return x, W, torch.zeros(m), torch.zeros(d)


def test_topk_encode_bfloat16_selection_gives_exact_values_and_gradients():
    x, W, b_enc, b_dec = _separated()
    dead = torch.arange(W.shape[1]) % 2 == 0
    grads = {}
    for dtype in (None, torch.bfloat16):
        params = [t.clone().requires_grad_(True) for t in (x, W, b_enc, b_dec)]
        codes = topk_encode(*params, 5, dead=dead, k_aux=3, select_dtype=dtype)
        assert codes.values.dtype == torch.float32
        exact = ((params[0] - params[3]) @ params[1] + params[2]).detach()
        assert torch.allclose(codes.values, exact.gather(1, codes.indices).relu(), atol=1e-6)
        assert torch.allclose(codes.aux_values, exact.gather(1, codes.aux_indices).relu(), atol=1e-6)
        (codes.values.pow(2).sum() + codes.aux_values.sum()).backward()
        grads[dtype] = (codes.indices.sort(-1).values, [p.grad for p in params])
    assert torch.equal(grads[None][0], grads[torch.bfloat16][0])
    for a, b in zip(grads[None][1], grads[torch.bfloat16][1], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("k", [3, 0], ids=["batchtopk", "relu"])
def test_flat_encode_bfloat16_selection_gives_exact_values_and_gradients(k):
    x, W, b_enc, centre = _separated()
    b_enc = b_enc - 1.0  # ReLU keeps only the clearly positive entries
    out = {}
    for dtype in (None, torch.bfloat16):
        params = [t.clone().requires_grad_(True) for t in (x, W, b_enc, centre)]
        if k:
            codes = batch_topk_encode(*params, k, select_dtype=dtype)
        else:
            codes = relu_encode(*params, select_dtype=dtype)
        exact = ((params[0] - params[3]) @ params[1] + params[2]).detach()
        assert torch.allclose(codes.values, exact[codes.rows, codes.latents], atol=1e-6)
        assert bool((codes.values > 0).all())
        codes.values.pow(2).sum().backward()
        out[dtype] = (codes.rows, codes.latents, [p.grad for p in params])
    assert torch.equal(out[None][0], out[torch.bfloat16][0])
    assert torch.equal(out[None][1], out[torch.bfloat16][1])
    for a, b in zip(out[None][2], out[torch.bfloat16][2], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("architecture", ["topk", "batchtopk"])
def test_bfloat16_selection_keeps_the_training_curve(tmp_path, architecture):
    """On data with near-ties bfloat16 selection picks a few other latents; the loss curve stays within 2%."""
    x = sparse_data(4096, 32, n_features=128, per_token=6, seed=0)
    store = ActivationStore(write_store(tmp_path / "acts", x, shard_rows=2048))
    curves = {}
    for dtype in ("float32", "bfloat16"):
        cfg = SAEConfig(architecture=architecture, d_in=32, d_sae=256, k=6, select_dtype=dtype)
        tcfg = TrainConfig(lr=3e-3, batch_size=256, epochs=2, warmup_steps=5, checkpoint_every=0, log_every=1)
        curves[dtype] = train_sae(cfg, tcfg, store, tmp_path / dtype).metrics["history"]
    for a, b in zip(curves["float32"], curves["bfloat16"], strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.02), a["step"]
    assert curves["bfloat16"][-1]["loss"] < 0.5 * curves["bfloat16"][0]["loss"]


def test_select_dtype_is_checked():
    from saeflow.errors import ConfigError

    with pytest.raises(ConfigError, match="select_dtype"):
        SAEConfig(architecture="topk", d_in=4, d_sae=8, k=2, select_dtype="float16")


def test_dead_topk_by_hand():
    from saeflow.sae.kernels import dead_topk

    pre = torch.tensor([[5.0, 1.0, 9.0, 3.0], [0.0, 4.0, 8.0, -1.0]])
    dead = torch.tensor([1, 3])
    values, ids = dead_topk(pre, dead, 1)
    assert values.tolist() == [[3.0], [4.0]] and ids.tolist() == [[3], [1]]
    values, ids = dead_topk(pre, dead, 2)  # every dead latent
    assert values.tolist() == [[1.0, 3.0], [4.0, -1.0]] and ids.tolist() == [[1, 3], [1, 3]]


def test_decode_dense_codes_by_hand_with_an_empty_row():
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    latents = torch.zeros(3, 3)
    latents[0, 2] = 2.0  # row 0: 2·(3, 3); row 1: nothing; row 2: 1·(1, 0) + 0.5·(0, 2)
    latents[2, 0], latents[2, 1] = 1.0, 0.5
    big = torch.zeros(3, 3 * 100)  # 3 of 900 codes: under the 5% bound, the gather path
    big[:, :3] = latents
    W_big = torch.cat([W, torch.ones(297, 2)])
    with torch.no_grad():
        out = decode_dense_codes(big, W_big)
    assert torch.equal(out, torch.tensor([[6.0, 6.0], [0.0, 0.0], [1.0, 1.0]]))


def test_decode_dense_codes_matches_the_matmul_and_keeps_autograd():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(512, 16, generator=g, requires_grad=True)
    pre = torch.randn(64, 512, generator=g)
    values, indices = pre.topk(8, dim=-1)
    latents = torch.zeros_like(pre).scatter_(-1, indices, values.relu())
    with torch.no_grad():
        assert torch.allclose(decode_dense_codes(latents, W), latents @ W, atol=1e-5)
        dense = torch.randn(4, 512, generator=g)  # every code non-zero: the matmul itself
        assert torch.equal(decode_dense_codes(dense, W), dense @ W)
    out = decode_dense_codes(latents, W)  # with autograd: the matmul, so gradients flow to W
    out.sum().backward()
    assert torch.allclose(W.grad, latents.sum(0, keepdim=True).T.expand(-1, 16))
