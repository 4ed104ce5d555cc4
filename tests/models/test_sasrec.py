"""saeflow.models.sasrec: forward shapes, causal mask, splice, training, save/load."""

from __future__ import annotations

import torch

from saeflow.models.sasrec import (
    SASRec,
    SASRecConfig,
    SASRecNet,
    SASRecTrainConfig,
    load_sasrec,
    train_sasrec,
    training_windows,
)

CFG = SASRecConfig(n_items=20, d_model=16, n_layers=2, n_heads=2, max_len=8, dropout=0.0)


def tiny(seed=0):
    torch.manual_seed(seed)
    return SASRec(SASRecNet(CFG))


def test_shapes_and_losses():
    m = tiny()
    b = m.batch(m.encode([[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]]))
    assert b.input_ids.shape == (2, 8) and b.attention_mask.sum(1).tolist() == [3, 8]
    assert b.input_ids[1].tolist() == [6, 7, 8, 9, 10, 11, 12, 13]  # the last max_len items
    h = m.hidden(b, m.scoring_layer)
    assert h.shape == (2, 8, 16)
    assert m.hidden(b, 0).shape == (2, 8, 16)
    tl = m.token_losses(b)
    assert tl.scored.tolist()[0] == [True, True, False] + [False] * 5
    assert (tl.loss[~tl.scored] == 0).all() and (tl.loss[tl.scored] > 0).all()
    assert m.scores(h[:, -1]).shape == (2, 21) and torch.isinf(m.scores(h[:, -1])[:, 0]).all()


def test_causal_mask():
    m = tiny()
    b1 = m.batch([[1, 2, 3, 4, 5]])
    b2 = m.batch([[1, 2, 3, 9, 17]])
    for layer in range(m.n_layers):
        h1, h2 = m.hidden(b1, layer), m.hidden(b2, layer)
        assert torch.allclose(h1[:, :3], h2[:, :3], atol=1e-6)
        assert not torch.allclose(h1[:, 3:], h2[:, 3:])
    # right padding does not change real positions
    b3 = m.batch([[1, 2, 3], [1, 2, 3, 4, 5, 6]])
    assert torch.allclose(m.hidden(b3, 1)[0, :3], m.hidden(m.batch([[1, 2, 3]]), 1)[0], atol=1e-6)


def test_splice_replaces_scoring_state():
    m = tiny()
    b = m.batch([[1, 2, 3]])
    with m.splice(m.scoring_layer, lambda h: h * 0):
        assert (m.hidden(b, m.scoring_layer) == 0).all()
        assert torch.allclose(m.token_losses(b).loss[0, :2], torch.full((2,), torch.tensor(20.0).log()))
    assert not (m.hidden(b, m.scoring_layer) == 0).all()


def test_windows():
    assert training_windows([[1, 2, 3, 4, 5, 6]], 2) == [[4, 5, 6], [2, 3, 4], [1, 2]]
    assert training_windows([[1, 2, 3, 4, 5, 6]], 2, last_only=True) == [[4, 5, 6]]


def test_training_lowers_loss_and_round_trips(tmp_path):
    # 30 users cycling through 1→2→…→10→1: the next item is deterministic.
    seqs = [[(s + t) % 10 + 1 for t in range(9)] for s in range(30)]
    cfg = SASRecConfig(n_items=10, d_model=16, n_layers=1, max_len=8, dropout=0.0)
    tcfg = SASRecTrainConfig(lr=1e-2, batch_size=16, max_epochs=30, eval_every=5, patience=3, seed=0)
    res = train_sasrec(cfg, tcfg, [s[:-2] for s in seqs], [s[-2] for s in seqs])
    assert res.history[-1]["train_loss"] < 0.5 * res.history[0]["train_loss"]
    assert res.best_valid_ndcg10 > 0.9
    res.model.save(tmp_path / "m", info={"best_epoch": res.best_epoch})
    loaded = load_sasrec(tmp_path / "m")
    b = loaded.batch([[1, 2, 3]])
    assert torch.equal(loaded.hidden(b, 0), res.model.hidden(b, 0))
    res2 = train_sasrec(cfg, tcfg, [s[:-2] for s in seqs], [s[-2] for s in seqs])
    assert res2.best_valid_ndcg10 == res.best_valid_ndcg10  # seeded
