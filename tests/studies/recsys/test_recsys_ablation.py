"""saeflow.studies.recsys.ablation and reconstruction: the error term is kept, edits are exact, activation
sets."""

from __future__ import annotations

import torch

from saeflow.activations import ActivationStore
from saeflow.models.sasrec import SASRec, SASRecConfig, SASRecNet
from saeflow.sae import SAEConfig, make_sae
from saeflow.studies.recsys.ablation import (
    Edit,
    ablation_table,
    edit_latents,
    edit_neurons,
    matched_frequency_controls,
)
from saeflow.studies.recsys.data import ItemMeta
from saeflow.studies.recsys.dictionary import prefix_histories
from saeflow.studies.recsys.metrics import full_ranks
from saeflow.studies.recsys.reconstruction import reconstruction_quality, write_sasrec_activations

N_ITEMS = 12


def setup():
    torch.manual_seed(0)
    model = SASRec(SASRecNet(SASRecConfig(n_items=N_ITEMS, d_model=8, n_layers=1, max_len=6, dropout=0.0)))
    sae = make_sae(SAEConfig("topk", d_in=8, d_sae=32, k=4), seed=0)
    sae.input_scale = 2.0  # the edit must undo the input scale
    hist = [[(u * 5 + t) % N_ITEMS + 1 for t in range(4)] for u in range(10)]
    targets = [(u * 5 + 4) % N_ITEMS + 1 for u in range(10)]
    return model, sae, hist, targets


def test_scale_one_keeps_state_and_ranking_exactly():
    model, sae, hist, targets = setup()
    h = model.last_states(hist)
    h1 = edit_latents(sae, h, range(32), 1.0)
    assert torch.equal(h1, h)
    assert torch.equal(
        full_ranks(model.scores(h1), hist, targets), full_ranks(model.scores(h), hist, targets)
    )


def test_ablation_moves_state_by_minus_f_w_dec():
    model, sae, hist, _ = setup()
    h = model.last_states(hist)
    f = sae.reconstruct_raw(h).latents
    i = int(f.abs().sum(0).argmax())
    h0 = edit_latents(sae, h, [i], 0.0)
    # in the model's scale: decode is W_dec / input_scale per unit of f
    expected = -f[:, i : i + 1] * sae.W_dec[i].detach() / sae.input_scale
    assert torch.allclose(h0 - h, expected, atol=1e-6)
    # the error term is kept: h0 = h − recon(f) + decode(f') with f'_i = 0
    f2 = f.clone()
    f2[:, i] = 0
    recon = sae.reconstruct_raw(h).recon
    assert torch.allclose(h0, h - recon + (sae.decode(f2) / sae.input_scale).detach(), atol=1e-5)
    assert torch.equal(edit_neurons(h, [2], 3.0)[:, 2], h[:, 2] * 3) and torch.equal(
        edit_neurons(h, [2], 3.0)[:, 3], h[:, 3]
    )


def test_ablation_table_and_controls():
    model, sae, hist, targets = setup()
    meta = ItemMeta(
        ((),) * (N_ITEMS + 1),
        (None,) * (N_ITEMS + 1),
        ((),) + tuple(("Horror",) if i % 2 else ("Comedy",) for i in range(1, N_ITEMS + 1)),
    )
    h = model.last_states(hist)
    freq = (sae.reconstruct_raw(h).latents > 0).float().mean(0)
    unit = int(freq.argmax())
    ctrl = matched_frequency_controls(freq, [unit], seed=0)
    assert ctrl[0] != unit and freq[ctrl[0]] > 0
    neuron = int((h > 0).sum(0).argmax())
    edits = [Edit("latent", unit, "Horror", "concept"), Edit("neuron", neuron, "Horror", "neuron")]
    table = ablation_table(model, sae, h, hist, targets, meta, edits, scales=(1.0, 0.0))
    one = table[table.scale == 1.0]
    assert (one.delta_share == 0).all() and (one.delta_rank == 0).all() and (one.delta_ndcg10 == 0).all()
    assert (table.n_users > 0).all() and len(table) == 4


def test_activation_set_and_reconstruction(tmp_path):
    model, sae, hist, targets = setup()
    manifest = write_sasrec_activations(model, hist, [f"u{i}" for i in range(10)], tmp_path / "acts")
    assert manifest.n_tokens == 40 and manifest.layer == model.scoring_layer
    store = ActivationStore(tmp_path / "acts" / "manifest.json")
    rows = list(store.iter_rows())
    b = model.batch(hist[:1])
    assert torch.allclose(rows[0].acts[:4], model.hidden(b, model.scoring_layer)[0], atol=1e-6)
    prefixes = prefix_histories(hist, max_len=6)
    assert len(prefixes) == 40 and prefixes[:2] == [hist[0][:1], hist[0][:2]]
    assert [p[-1] for p in prefixes] == torch.cat([r.token_ids for r in rows]).tolist()
    q = reconstruction_quality(sae, (r.acts for r in rows), model, hist, targets)
    assert q.n_tokens == 40 and 0 < q.l0 <= 4 and 0 <= q.dead_fraction <= 1
    assert q.ndcg10_kept == q.ndcg10_recon / q.ndcg10 if q.ndcg10 > 0 else True
