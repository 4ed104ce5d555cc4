"""saeflow.models.causal_lm on tiny randomly initialised models (Llama, GPT-2, GPT-NeoX) with an offline
tokenizer."""

from __future__ import annotations

import json
import re

import pytest
import torch
from tiny_models import TEXTS, save_tiny_model, tiny_config, tiny_tokenizer  # noqa: F401

from saeflow.errors import AssetError, ConfigError
from saeflow.models.causal_lm import (
    LoadedLM,
    load_lm,
    prepare_model,
    residual_stream,
    splice,
    tokenize_batches,
)


@pytest.fixture(params=["llama", "gpt2", "neox"])
def tiny_lm(request, tmp_path) -> LoadedLM:
    return load_lm(save_tiny_model(tmp_path / f"tiny-{request.param}", request.param))


@pytest.fixture
def llama_lm(tmp_path) -> LoadedLM:
    return load_lm(save_tiny_model(tmp_path / "tiny-llama", "llama"))


def one_batch(lm: LoadedLM, texts=TEXTS, batch_size=16):
    return next(iter(tokenize_batches(lm.tokenizer, texts, max_length=32, batch_size=batch_size)))


def test_load_lm_fields(tiny_lm):
    assert tiny_lm.n_layers == 3 and tiny_lm.d_model == 16
    assert len(tiny_lm.layers) == 3
    assert tiny_lm.tokenizer.pad_token_id is not None
    assert not tiny_lm.model.training


def test_residual_stream_matches_hidden_states(tiny_lm):
    batch = one_batch(tiny_lm)
    with torch.no_grad():
        out = tiny_lm.model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True
        )
    captured = {}
    handles = [
        layer.register_forward_hook(
            lambda m, a, o, i=i: captured.__setitem__(i, o[0] if isinstance(o, tuple) else o)
        )
        for i, layer in enumerate(tiny_lm.layers)
    ]
    with torch.no_grad():
        tiny_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    for h in handles:
        h.remove()
    mask = batch.attention_mask.bool()
    for layer in range(tiny_lm.n_layers):
        got = residual_stream(tiny_lm, batch.input_ids, batch.attention_mask, layer)
        assert got.shape == (*batch.input_ids.shape, 16)
        torch.testing.assert_close(got[mask], captured[layer][mask], atol=1e-5, rtol=0)
        if layer < tiny_lm.n_layers - 1:  # HF replaces the last entry by the final-norm output
            torch.testing.assert_close(got[mask], out.hidden_states[layer + 1][mask], atol=1e-5, rtol=0)
    # successive layers differ: the hook really stops at the asked layer
    h0 = residual_stream(tiny_lm, batch.input_ids, batch.attention_mask, 0)
    h1 = residual_stream(tiny_lm, batch.input_ids, batch.attention_mask, 1)
    assert not torch.allclose(h0, h1)


def test_residual_stream_skips_later_layers(tiny_lm):
    calls = [0] * tiny_lm.n_layers
    handles = [
        layer.register_forward_pre_hook(lambda m, a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, layer in enumerate(tiny_lm.layers)
    ]
    batch = one_batch(tiny_lm)
    residual_stream(tiny_lm, batch.input_ids, batch.attention_mask, 0)
    assert calls == [1, 0, 0]
    residual_stream(tiny_lm, batch.input_ids, batch.attention_mask, 1)
    assert calls == [2, 1, 0]
    for h in handles:
        h.remove()
    # the stop hook is removed afterwards: a normal forward still runs every layer and returns logits
    with torch.no_grad():
        out = tiny_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    assert out.logits.shape[:2] == batch.input_ids.shape


def test_residual_stream_rejects_bad_layer(llama_lm):
    batch = one_batch(llama_lm)
    with pytest.raises(ConfigError, match="between 0 and 2"):
        residual_stream(llama_lm, batch.input_ids, batch.attention_mask, 3)


def test_splice_identity_and_zero(tiny_lm):
    batch = one_batch(tiny_lm)

    def logits():
        with torch.no_grad():
            return tiny_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits

    base = logits()
    with splice(tiny_lm, 1, lambda h: h.clone()):
        torch.testing.assert_close(logits(), base, atol=1e-6, rtol=0)
    with splice(tiny_lm, 1, torch.zeros_like):
        zeroed = logits()
    assert not torch.allclose(zeroed, base, atol=1e-3)
    torch.testing.assert_close(logits(), base, atol=1e-6, rtol=0)  # hook removed on exit


def test_splice_can_keep_position_zero(llama_lm):
    batch = one_batch(llama_lm)

    def zero_after_first(h):
        out = torch.zeros_like(h)
        out[:, 0] = h[:, 0]
        return out

    with torch.no_grad():
        base = llama_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        with splice(llama_lm, 0, zero_after_first):
            spliced = llama_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    torch.testing.assert_close(spliced[:, 0], base[:, 0], atol=1e-5, rtol=0)  # causal: pos 0 unaffected
    assert not torch.allclose(spliced[:, 1:], base[:, 1:], atol=1e-3)


def test_splice_rejects_shape_change(llama_lm):
    batch = one_batch(llama_lm)
    with splice(llama_lm, 0, lambda h: h[:, :1]), pytest.raises(ValueError, match="shape"):
        llama_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)


def test_tokenize_batches_padding_and_order(llama_lm):
    tok = llama_lm.tokenizer
    texts = [*TEXTS, "", "w1 " * 50]
    batches = list(tokenize_batches(tok, texts, max_length=8, batch_size=3))
    again = list(tokenize_batches(tok, texts, max_length=8, batch_size=3))
    seen = []
    for b, b2 in zip(batches, again, strict=True):
        assert b.indices == b2.indices and torch.equal(b.input_ids, b2.input_ids)
        assert b.input_ids.shape == b.attention_mask.shape and b.input_ids.shape[1] <= 8
        for row, i in enumerate(b.indices):
            ids = tok(texts[i], truncation=True, max_length=8)["input_ids"]
            n = len(ids)
            assert b.attention_mask[row].tolist() == [1] * n + [0] * (b.input_ids.shape[1] - n)  # right pad
            assert b.input_ids[row, :n].tolist() == ids
            assert (b.input_ids[row, n:] == tok.pad_token_id).all()
        seen += b.indices
    assert sorted(seen) == [i for i, t in enumerate(texts) if t]  # empty text skipped, others once
    unsorted = list(tokenize_batches(tok, texts, max_length=8, batch_size=3, sort_by_length=False))
    assert [i for b in unsorted for i in b.indices] == [0, 1, 2, 3, 4, 5, 7]


def test_prepare_model_from_local_dir(tmp_path):
    src = save_tiny_model(tmp_path / "src", "llama")
    marker = prepare_model(src, tmp_path / "prepared" / "tiny", dtype="float32")
    assert marker == tmp_path / "prepared" / "tiny" / "prepared.json"
    record = json.loads(marker.read_text())
    assert record["n_layers"] == 3 and record["d_model"] == 16 and record["source"] == str(src)
    assert record["kind"] == "dir"
    assert not [p for p in (tmp_path / "prepared").iterdir() if p.name.startswith(".")]  # no temp dir left
    a, b = load_lm(src), load_lm(marker.parent)
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(a.model(ids).logits, b.model(ids).logits)
    # preparing again replaces the dir
    assert prepare_model(src, marker.parent) == marker


@pytest.mark.parametrize("missing", ["missing/model.gguf", "missing_dir/sub/model"])
def test_prepare_model_missing_source(tmp_path, missing):
    path = tmp_path / missing
    with pytest.raises(AssetError, match=re.escape(str(path))):
        prepare_model(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_prepare_model_dir_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssetError, match=r"config\.json"):
        prepare_model(tmp_path / "empty", tmp_path / "out")


def test_prepare_model_hub_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(AssetError, match=r"saeflow-test/no-such-model.*model\.source"):
        prepare_model("saeflow-test/no-such-model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_load_lm_missing_dir(tmp_path):
    with pytest.raises(AssetError, match="prepare_model"):
        load_lm(tmp_path / "nowhere")


def test_prepare_model_dir_without_tokenizer(tmp_path):
    src = save_tiny_model(tmp_path / "src", "llama")
    for p in src.glob("tokenizer*"):
        p.unlink()
    with pytest.raises(AssetError, match="no tokenizer files"):
        prepare_model(src, tmp_path / "out")


def test_prepare_model_rejects_other_files(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\0")
    with pytest.raises(AssetError, match=r"not a \.gguf file"):
        prepare_model(weights, tmp_path / "out")


def test_causal_lm_behind_the_subject_model_interface(tmp_path):
    """The interface gives what the functions give: same hidden states, stored positions without position 0,
    and per-position next-token losses whose mean is the plain CE."""
    from saeflow.models.base import SubjectModel
    from saeflow.models.causal_lm import CausalLM

    model = CausalLM.load(save_tiny_model(tmp_path / "m"), max_length=16)
    assert isinstance(model, SubjectModel) and model.kind == "causal_lm"
    batch = model.batch(model.encode(TEXTS[:3]))
    keep = model.stored_mask(batch)
    assert not keep[:, 0].any() and int(keep.sum()) == int(batch.attention_mask.sum()) - 3
    assert torch.equal(
        model.hidden(batch, 1), residual_stream(model.lm, batch.input_ids, batch.attention_mask, 1)
    )
    losses = model.token_losses(batch)
    logits = model.lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.float()
    row = 0
    n = int(batch.attention_mask[row].sum())
    expected = torch.nn.functional.cross_entropy(logits[row, : n - 1], batch.input_ids[row, 1:n])
    assert losses.scored[row].sum() == n - 1
    assert torch.allclose(losses.loss[row][losses.scored[row]].mean(), expected, atol=1e-5)
    with model.splice(1, torch.zeros_like):
        assert not torch.allclose(model.token_losses(batch).loss, losses.loss)
