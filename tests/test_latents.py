"""Top activations: the streamed top-N / quantile / random contexts against brute force on a small random
set."""

import torch
from store_helpers import write_store

from saeflow.activations import ActivationStore
from saeflow.latents import LatentActivations, LatentsConfig, document_max, top_activations
from saeflow.sae.base import make_sae


def _setup(tmp_path, n=300, d=8, m=12):
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(n, d, generator=g).half().float()  # exactly what the float16 store gives back
    doc = torch.arange(n) // 10  # 30 documents of 10 rows
    tok = torch.randint(0, 50, (n,), generator=g)
    path = write_store(tmp_path / "acts", acts, token_ids=tok, doc_index=doc, shard_rows=64)
    sae = make_sae({"architecture": "relu", "d_in": d, "d_sae": m}, seed=1)
    with torch.no_grad():
        sae.b_enc.fill_(-0.8)  # sparse-ish: most latents fire on a minority of rows
    return ActivationStore(path), sae, acts, tok, doc


def test_streamed_top_n_equals_brute_force(tmp_path):
    store, sae, acts, tok, doc = _setup(tmp_path)
    cfg = LatentsConfig(
        n_top=7,
        n_quantiles=3,
        per_quantile=2,
        n_random=5,
        random_pool=50,
        window_left=3,
        window_right=1,
        batch_size=37,
    )
    res = top_activations(sae, store, cfg)
    f = sae.encode(acts).detach()
    for i in range(f.shape[1]):
        col = f[:, i]
        order = torch.argsort(col, descending=True)[:7]
        order = order[col[order] > 0]
        got = res.top.rows[i][res.top.rows[i] >= 0]
        assert got.tolist() == order.tolist()
        torch.testing.assert_close(res.top.values[i, : len(got)], col[order], rtol=1e-5, atol=1e-5)
        assert abs(float(res.frequency[i]) - float((col > 0).float().mean())) < 1e-6
        assert int(res.histogram[i].sum()) == int((col > 0).sum())
        # quantile contexts are active, outside the top-N, in their interval of (0, max]
        q = res.quantile.rows[i]
        qv = res.quantile.values[i][q >= 0]
        assert not set(q[q >= 0].tolist()) & set(order.tolist())
        assert (qv > 0).all() and torch.allclose(qv, col[q[q >= 0]], atol=1e-5)
        bins = res.quantile_bin[i][q >= 0]
        rel = qv / col.max()
        assert ((rel >= bins / 3 - 1e-6) & (rel <= (bins + 1) / 3 + 1e-6)).all()
        # random contexts: latent zero there
        r = res.random.rows[i][res.random.rows[i] >= 0]
        assert (col[r] == 0).all()
    # windows: token ids and the latent's activations around the centre, within the document only
    i, j = 0, 0
    row = int(res.top.rows[i, j])
    for w, off in enumerate(range(-3, 2)):
        rr = row + off
        if 0 <= rr < len(tok) and doc[rr] == doc[row]:
            assert int(res.top.token_ids[i, j, w]) == int(tok[rr])
            assert abs(float(res.top.acts[i, j, w]) - float(f[rr, i])) < 1e-5
        else:
            assert int(res.top.token_ids[i, j, w]) == -1
    assert int(res.top.doc_index[i, j]) == int(doc[row])


def test_block_size_does_not_change_result_and_roundtrip(tmp_path):
    store, sae, *_ = _setup(tmp_path)
    a = top_activations(sae, store, LatentsConfig(n_top=5, batch_size=29, random_pool=40, n_random=4))
    b = top_activations(sae, store, LatentsConfig(n_top=5, batch_size=300, random_pool=40, n_random=4))
    for kind in ("top", "quantile", "random"):
        assert torch.equal(getattr(a, kind).rows, getattr(b, kind).rows)
    a.save(tmp_path / "out")
    c = LatentActivations.load(tmp_path / "out")
    assert torch.equal(c.quantile.token_ids, a.quantile.token_ids) and c.config == a.config


def test_document_max(tmp_path):
    store, sae, acts, _, doc = _setup(tmp_path)
    got = document_max(sae, store, batch_size=33)
    f = sae.encode(acts).detach()
    want = torch.stack([f[doc == k].max(0).values for k in range(30)])
    torch.testing.assert_close(got, want.clamp_min(0))


def test_row_mask_excludes_rows_as_centres(tmp_path):
    store, sae, acts, *_ = _setup(tmp_path)
    mask = torch.arange(300) % 3 != 0
    res = top_activations(sae, store, LatentsConfig(n_top=5, random_pool=40, n_random=4), row_mask=mask)
    f = sae.encode(acts).detach() * mask[:, None]
    for kind in ("top", "quantile", "random"):
        rows = getattr(res, kind).rows
        assert (rows[rows >= 0] % 3 != 0).all()
    want = torch.argsort(f[:, 0], descending=True)[:5]
    assert res.top.rows[0][res.top.rows[0] >= 0].tolist() == want[f[want, 0] > 0].tolist()
    torch.testing.assert_close(res.frequency, (f > 0).float().sum(0) / 200)
