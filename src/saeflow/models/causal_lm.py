"""Load any causal LM (hub id, local HF dir or GGUF file), run it up to a layer, splice a function in.

The residual stream of decoder layer ``l`` is that layer's output hidden state, i.e.
``output_hidden_states[l + 1]`` of a full forward (for the last layer, before the final norm).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from saeflow.errors import AssetError, ConfigError
from saeflow.io import atomic_path, write_json
from saeflow.models.base import ModelBatch, SubjectModel, TokenLosses
from saeflow.runtime import file_sha256

log = logging.getLogger(__name__)

PREPARED_MARKER = "prepared.json"

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# Attribute paths of the decoder layer list, tried in order (Llama/Gemma/Qwen/Mistral, multimodal Gemma 3,
# OPT, Pythia/GPT-NeoX, GPT-2/GPT-J/Bloom/Falcon, MPT-like).
_LAYER_PATHS = (
    "model.layers",
    "model.language_model.layers",
    "model.decoder.layers",
    "gpt_neox.layers",
    "transformer.h",
    "transformer.layers",
    "transformer.blocks",
)

# What a local HF model dir must hold.
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def torch_dtype(name: str | torch.dtype) -> torch.dtype:
    """Map a config dtype name ("float32", "float16", "bfloat16") to a torch dtype."""
    if isinstance(name, torch.dtype):
        return name
    try:
        return DTYPES[name]
    except KeyError:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {name!r}") from None


def _dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)


# --------------------------------------------------------------------------------------------------
# prepare: any source -> plain HF dir (config + safetensors + tokenizer) + prepared.json
# --------------------------------------------------------------------------------------------------


def prepare_model(source: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Turn `source` (GGUF file, local HF model dir or hub id) into a plain HF model dir at `out_dir`.

    The dir is assembled in a temporary sibling and renamed into place; `prepared.json` (source, dtype,
    n_layers, d_model, sha256 of the source file when it is a file) is written last inside it.
    Returns the path of `prepared.json`.
    """
    out_dir = Path(out_dir)
    tdtype = torch_dtype(dtype)
    src = str(source)
    path = Path(src).expanduser()
    record: dict[str, Any] = {"source": src, "dtype": _dtype_name(tdtype)}

    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise AssetError(
                f"model source {src} is a file but not a .gguf file; give a GGUF file, "
                "a local Hugging Face model dir or a hub id in config model.source"
            )
        kind = "gguf"
        record["sha256"] = file_sha256(path)
    elif path.is_dir():
        kind = "dir"
    elif _looks_like_path(src):
        raise AssetError(
            f"model source {src} does not exist; set config model.source to an existing GGUF "
            "file or local Hugging Face model dir (or a hub id when online)"
        )
    else:
        kind = "hub"
    record["kind"] = kind

    with atomic_path(out_dir, is_dir=True) as tmp:
        if kind == "gguf":
            _prepare_from_gguf(path, tmp, tdtype)
        elif kind == "dir":
            _prepare_from_dir(path, tmp)
        else:
            _prepare_from_hub(src, tmp, tdtype)
        record.update(_shape_of(tmp))
        write_json(tmp / PREPARED_MARKER, record)
    log.info(
        "prepared %s (%s) into %s: %d layers, d_model=%d",
        src,
        kind,
        out_dir,
        record["n_layers"],
        record["d_model"],
    )
    return out_dir / PREPARED_MARKER


def _looks_like_path(src: str) -> bool:
    return (
        src.startswith((".", "/", "~"))
        or src.lower().endswith(".gguf")
        or src.count("/") > 1
        or not _HUB_ID.match(src)
    )


def _prepare_from_gguf(path: Path, out: Path, dtype: torch.dtype) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("de-quantising %s (takes ~20 s for a 135M model)", path)
    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, OSError, KeyError, RuntimeError) as err:
        raise AssetError(f"cannot load GGUF model {path}: {err}") from err
    # A GGUF-loaded model carries a quantization_config and cannot be saved; rebuild a plain model.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    del loaded
    plain.to(dtype).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _prepare_from_dir(path: Path, out: Path) -> None:
    """Copy a local HF model dir (a copy, not links: later edits of the source cannot leak in)."""
    names = {p.name for p in path.iterdir()}
    if "config.json" not in names:
        raise AssetError(
            f"model dir {path} has no config.json; expected a Hugging Face model dir "
            "(config.json, *.safetensors, tokenizer files)"
        )
    if not any(Path(n).suffix in _WEIGHT_SUFFIXES for n in names):
        raise AssetError(f"model dir {path} has no weights (*.safetensors or *.bin)")
    if not names & _TOKENIZER_FILES:
        raise AssetError(
            f"model dir {path} has no tokenizer files (one of {', '.join(sorted(_TOKENIZER_FILES))})"
        )
    for item in path.iterdir():
        if item.name.startswith(".") or item.name == PREPARED_MARKER:
            continue
        if item.is_dir():
            shutil.copytree(item, out / item.name)
        else:
            shutil.copy2(item, out / item.name)


def _prepare_from_hub(model_id: str, out: Path, dtype: torch.dtype) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(model_id)
    except Exception as err:  # offline / unknown repo / gated: all mean "cannot get it from here"
        from huggingface_hub.constants import is_offline_mode

        offline = is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "0") not in (
            "0",
            "",
            "false",
            "False",
        )
        why = "HF_HUB_OFFLINE is set" if offline else f"{type(err).__name__}: {err}"
        raise AssetError(
            f"cannot get model '{model_id}' from the Hugging Face hub ({why}). Provide it locally: set "
            f"config model.source to a local model dir (e.g. from `huggingface-cli download {model_id} "
            "--local-dir DIR` on a machine with network) or to a GGUF file path"
        ) from err
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _shape_of(model_dir: Path) -> dict[str, int]:
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(str(model_dir))
    except (ValueError, OSError) as err:
        raise AssetError(f"cannot read the model config in {model_dir}: {err}") from err
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    n_layers = getattr(text, "num_hidden_layers", None) or getattr(text, "n_layer", None)
    d_model = getattr(text, "hidden_size", None) or getattr(text, "n_embd", None)
    if not n_layers or not d_model:
        raise AssetError(f"model config in {model_dir} does not say its number of layers / hidden size")
    return {"n_layers": int(n_layers), "d_model": int(d_model), "model_type": str(text.model_type)}


# --------------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------------


@dataclass
class LoadedLM:
    """A causal LM ready for inference."""

    model: nn.Module
    """The `*ForCausalLM` module, in eval mode."""
    tokenizer: Any
    """Its tokenizer; a pad token is always set and padding is on the right."""
    layers: nn.ModuleList
    """The decoder layer list (residual stream of layer l = output of layers[l])."""
    n_layers: int
    d_model: int
    name: str
    """Short model name (the model dir's name)."""
    device: torch.device
    dtype: torch.dtype


def find_layers(model: nn.Module) -> nn.ModuleList:
    """Return the decoder layer list of a causal LM, or raise ConfigError for an unknown architecture."""
    for dotted in _LAYER_PATHS:
        obj: Any = model
        for attr in dotted.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    raise ConfigError(
        f"unsupported architecture {type(model).__name__}: cannot find its decoder layer list "
        f"(looked for {', '.join(_LAYER_PATHS)})"
    )


def load_lm(model_dir: str | Path, dtype: str | torch.dtype = "float32", device: str = "cpu") -> LoadedLM:
    """Load a prepared (plain HF) model dir for inference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise AssetError(
            f"model dir {model_dir} is missing or has no config.json; run the prepare_model "
            "rule (or saeflow.models.causal_lm.prepare_model) first"
        )
    tdtype = torch_dtype(dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=tdtype)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (ValueError, OSError) as err:
        raise AssetError(f"cannot load the model in {model_dir}: {err}") from err
    model.to(device).eval()
    model.requires_grad_(False)
    if tokenizer.pad_token is None:
        for candidate in ("eos_token", "unk_token", "bos_token"):
            if getattr(tokenizer, candidate, None) is not None:
                tokenizer.pad_token = getattr(tokenizer, candidate)
                break
        else:
            raise AssetError(f"the tokenizer in {model_dir} has no pad, eos, unk or bos token to pad with")
    tokenizer.padding_side = "right"
    layers = find_layers(model)
    shape = _shape_of(model_dir)
    return LoadedLM(
        model=model,
        tokenizer=tokenizer,
        layers=layers,
        n_layers=len(layers),
        d_model=shape["d_model"],
        name=model_dir.name,
        device=torch.device(device),
        dtype=tdtype,
    )


# --------------------------------------------------------------------------------------------------
# run to a layer, splice
# --------------------------------------------------------------------------------------------------


class _StopForward(Exception):
    """Raised by a hook to end a forward pass early, carrying the hidden state it captured."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__()
        self.hidden = hidden


def _hidden_of(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _check_layer(lm: LoadedLM, layer: int) -> int:
    if not 0 <= layer < lm.n_layers:
        raise ConfigError(f"model.layer must be between 0 and {lm.n_layers - 1} for {lm.name}; got {layer}")
    return layer


def residual_stream(
    lm: LoadedLM, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, layer: int
) -> torch.Tensor:
    """Output hidden state [B, T, d] of decoder layer `layer`, without running any later layer.

    Runs under torch.inference_mode, so the result is an inference tensor (no autograd).
    """
    block = lm.layers[_check_layer(lm, layer)]

    def stop(_module, _args, output):
        raise _StopForward(_hidden_of(output))

    handle = block.register_forward_hook(stop)
    try:
        with torch.inference_mode():
            lm.model(
                input_ids=input_ids.to(lm.device),
                attention_mask=None if attention_mask is None else attention_mask.to(lm.device),
                use_cache=False,
            )
    except _StopForward as done:
        return done.hidden
    finally:
        handle.remove()
    raise RuntimeError(f"layer {layer} of {lm.name} was never reached during the forward pass")


@contextmanager
def splice(lm: LoadedLM, layer: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, replace layer `layer`'s output hidden states h by fn(h) in every forward.

    The rest of the layer's output tuple (if it returns one) is kept. fn must keep h's shape; it sees
    every position, so it decides itself which positions to leave unchanged.
    """
    block = lm.layers[_check_layer(lm, layer)]

    def replace(_module, _args, output):
        h = _hidden_of(output)
        new = fn(h)
        if new.shape != h.shape:
            raise ValueError(
                f"splice fn must keep the hidden state shape {tuple(h.shape)}; got {tuple(new.shape)}"
            )
        new = new.to(h.dtype)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = block.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


# --------------------------------------------------------------------------------------------------
# tokenisation
# --------------------------------------------------------------------------------------------------


class Batch(NamedTuple):
    input_ids: torch.Tensor
    """[B, T] int64, right-padded with the pad token id."""
    attention_mask: torch.Tensor
    """[B, T] int64, 1 on real tokens."""
    indices: list[int]
    """Index in `texts` of each row."""


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text (special tokens added as the model expects, truncated to max_length)."""
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)[
        "input_ids"
    ]


def pad_batch(token_lists: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest; return (input_ids, attention_mask)."""
    width = max(len(t) for t in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, toks in enumerate(token_lists):
        ids[row, : len(toks)] = torch.as_tensor(list(toks), dtype=torch.long)
        mask[row, : len(toks)] = 1
    return ids, mask


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group indices into batches of similar length (longest first; ties keep input order)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1; got {batch_size}")
    order = sorted((i for i, n in enumerate(lengths) if n > 0), key=lambda i: (-lengths[i], i))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def tokenize_batches(
    tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int, *, sort_by_length: bool = True
) -> Iterator[Batch]:
    """Tokenise (truncating to max_length), batch and right-pad `texts`.

    With sort_by_length, batches group texts of similar length (less padding); the order is still
    deterministic. Texts with no tokens are skipped. Each Batch says which texts its rows are.
    """
    token_lists = encode(tokenizer, texts, max_length)
    if sort_by_length:
        groups = length_sorted_batches([len(t) for t in token_lists], batch_size)
    else:
        keep = [i for i, t in enumerate(token_lists) if t]
        groups = [keep[s : s + batch_size] for s in range(0, len(keep), batch_size)]
    for group in groups:
        ids, mask = pad_batch([token_lists[i] for i in group], tokenizer.pad_token_id)
        yield Batch(ids, mask, group)


# --------------------------------------------------------------------------------------------------
# the subject-model interface
# --------------------------------------------------------------------------------------------------


class CausalLM(SubjectModel):
    """A loaded causal LM behind the subject-model interface (saeflow.models.base).

    Records are texts; position 0 (BOS or the first token, an attention sink) is never stored; the scored
    loss is next-token cross-entropy, at position t for the prediction of token t + 1.
    """

    kind = "causal_lm"

    def __init__(self, lm: LoadedLM, max_length: int):
        self.lm, self.max_length = lm, max_length
        self.name, self.n_layers, self.d_model, self.device = lm.name, lm.n_layers, lm.d_model, lm.device

    @classmethod
    def load(
        cls, model_dir: str | Path, *, max_length: int, dtype: str = "float32", device: str = "cpu"
    ) -> CausalLM:
        return cls(load_lm(model_dir, dtype=dtype, device=device), max_length)

    def encode(self, records: Sequence[str]) -> list[list[int]]:
        return encode(self.lm.tokenizer, records, self.max_length)

    def batch(self, token_lists: Sequence[Sequence[int]]) -> ModelBatch:
        ids, mask = pad_batch(token_lists, self.lm.tokenizer.pad_token_id)
        return ModelBatch(ids.to(self.device), mask.to(self.device))

    def stored_mask(self, batch: ModelBatch) -> torch.Tensor:
        keep = batch.attention_mask.bool().clone()
        keep[:, 0] = False
        return keep

    def hidden(self, batch: ModelBatch, layer: int) -> torch.Tensor:
        return residual_stream(self.lm, batch.input_ids, batch.attention_mask, layer)

    def splice(self, layer: int, fn: Callable[[torch.Tensor], torch.Tensor]):
        return splice(self.lm, layer, fn)

    def token_losses(self, batch: ModelBatch) -> TokenLosses:
        with torch.inference_mode():
            logits = self.lm.model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask
            ).logits.float()
        loss = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=logits.device)
        scored = torch.zeros(batch.input_ids.shape, dtype=torch.bool, device=logits.device)
        targets = batch.input_ids[:, 1:]
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")
        valid = batch.attention_mask[:, 1:].bool()
        loss[:, :-1] = torch.where(valid, ce, torch.zeros_like(ce))
        scored[:, :-1] = valid
        return TokenLosses(loss, scored)
