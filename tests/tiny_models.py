"""Tiny randomly initialised causal LMs with an offline word-level tokenizer, shared by the tests."""

from __future__ import annotations

import torch

WORDS = [f"w{i}" for i in range(90)]
TEXTS = ["w1 w2 w3 w4 w5", "w7", "w10 w11 w12", "w3 w3 w3 w3 w3 w3 w3 w3 w3", "w80 w81", "w5 w6 w7 w8"]


def tiny_tokenizer(bos: bool):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]" if bos else None
    )


def tiny_config(arch: str):
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig

    common = {"vocab_size": 96, "pad_token_id": 0}
    if arch == "llama":
        return LlamaConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
            **common,
        )
    if arch == "gpt2":
        return GPT2Config(n_embd=16, n_layer=3, n_head=2, n_positions=64, **common)
    if arch == "neox":
        return GPTNeoXConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            max_position_embeddings=64,
            **common,
        )
    raise ValueError(arch)


def save_tiny_model(path, arch: str = "llama", seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch))
    # scale up the random init so layers visibly change the residual stream
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(10)
    model.save_pretrained(path)
    tiny_tokenizer(bos=arch == "gpt2").save_pretrained(path)
    return path


ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO", ".", "-", "<null_1>", "<mask>"]


def tiny_esm(tmp_path, *, layers: int = 3, max_positions: int = 64, token_dropout: bool = False, **kw):
    """A randomly initialised ESM-2-shaped masked LM (d = 16) behind saeflow.models.esm.EsmModel, with a
    tokenizer built from the ESM vocabulary file; seeded."""
    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer

    from saeflow.models.esm import EsmModel

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(ESM_VOCAB) + "\n")
    tok = EsmTokenizer(str(vocab))
    cfg = EsmConfig(
        vocab_size=len(ESM_VOCAB),
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=max_positions,
        pad_token_id=tok.pad_token_id,
        mask_token_id=tok.mask_token_id,
        position_embedding_type="rotary",
        token_dropout=token_dropout,
    )
    torch.manual_seed(0)
    return EsmModel(EsmForMaskedLM(cfg), tok, name="tiny-esm", **kw)
