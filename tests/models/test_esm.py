"""ESM-2 wrapper on a tiny randomly initialised EsmForMaskedLM with a tokenizer built from a vocab file."""

import pytest
import tiny_models
import torch

from saeflow.errors import DataError

SEQS = ["MKVLAAGICW", "MAHHE", "WYPQRSTNDLKA"]


def tiny_esm(tmp_path, **kw):
    return tiny_models.tiny_esm(tmp_path, token_dropout=True, **kw)


@pytest.fixture
def esm(tmp_path):
    return tiny_esm(tmp_path)


def test_encode_and_stored_mask_exclude_special_tokens(esm):
    toks = esm.encode(SEQS)
    assert toks[1][0] == esm.tokenizer.cls_token_id and toks[1][-1] == esm.tokenizer.eos_token_id
    assert esm.tokenizer.convert_ids_to_tokens(toks[1][1:-1]) == list("MAHHE")
    batch = esm.batch(toks)
    mask = esm.stored_mask(batch)
    assert mask.sum(dim=1).tolist() == [len(s) for s in SEQS]
    assert not mask[:, 0].any()
    assert not mask[batch.input_ids == esm.tokenizer.eos_token_id].any()
    assert not mask[batch.attention_mask == 0].any()
    x_id = esm.tokenizer.convert_tokens_to_ids("X")
    assert esm.encode(["MJ"])[0][2] == x_id  # letters outside the vocab are residues of unknown kind
    with pytest.raises(DataError, match="amino-acid letters"):
        esm.encode(["MK V"])


def test_hidden_is_the_layer_output(esm):
    batch = esm.batch(esm.encode(SEQS))
    with torch.inference_mode():
        out = esm.model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True
        )
    for layer in (
        0,
        1,
    ):  # hidden_states[layer + 1] = output of encoder layer `layer` (not the last: final LN)
        torch.testing.assert_close(esm.hidden(batch, layer), out.hidden_states[layer + 1])


def test_masked_lm_losses_are_seeded_and_splice_touches_only_residues(esm):
    batch = esm.batch(esm.encode(SEQS))
    first, second = esm.token_losses(batch), esm.token_losses(batch)
    assert torch.equal(first.scored, second.scored) and torch.equal(first.loss, second.loss)
    assert (first.scored <= esm.stored_mask(batch)).all() and (first.scored.sum(dim=1) >= 1).all()
    # the same sequence gets the same mask alone as in a batch
    alone = esm.masked_positions(esm.batch(esm.encode(SEQS[2:])))
    assert torch.equal(alone[0, : len(SEQS[2]) + 2], esm.masked_positions(batch)[2, : len(SEQS[2]) + 2])
    with esm.splice(1, lambda h: h):
        same = esm.token_losses(batch)
    torch.testing.assert_close(same.loss, first.loss)
    seen = {}

    def zero(h):
        seen["h"] = h
        return torch.zeros_like(h)

    with esm.splice(1, zero):
        ablated = esm.token_losses(batch)
        spliced_hidden = esm.hidden(batch, 2)
    assert not torch.allclose(ablated.loss, first.loss)
    # <cls> kept its clean layer-1 state, so layer 2 differs from a fully zeroed input there only through
    # attention
    assert spliced_hidden.shape == (3, batch.input_ids.shape[1], 16)
    assert seen["h"].shape[-1] == 16


def test_end_to_end_extraction(esm, tmp_path):
    from saeflow.activations import ActivationStore
    from saeflow.studies.protein.extract import extract_residue_activations

    manifest = extract_residue_activations(
        esm, SEQS, 1, tmp_path / "acts", max_tokens=20, batch_size=2, shard_rows=8, dtype="float32"
    )
    assert manifest.n_tokens == 20 and manifest.docs == ("seq0", "seq1", "seq2")
    store = ActivationStore(tmp_path / "acts" / "manifest.json")
    assert store.n_tokens == 20 and store.d_model == 16
    batch = esm.batch(esm.encode([SEQS[0]]))
    expected = esm.hidden(batch, 1)[0, 1:-1]
    from safetensors.torch import load_file

    shard = load_file(str(tmp_path / "acts" / manifest.shards[0].file))
    torch.testing.assert_close(shard["acts"], expected[:8])
    assert shard["position"].tolist() == list(range(8))
