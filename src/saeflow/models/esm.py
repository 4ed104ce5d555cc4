"""ESM-2 (Lin et al. 2023) through transformers' `EsmForMaskedLM`, behind the SubjectModel interface (kind
"esm").

Site: layer `l` is the output of encoder layer `l` (= `hidden_states[l + 1]` of a full forward, for every
layer but the last, whose `hidden_states` entry is after the final LayerNorm); `hidden` stops the forward
right there. Stored positions are residues: <cls>, <eos>, padding (and any other special token) are not
stored, spliced or scored. Fidelity is the masked-LM CE at `mask_prob` (15%) of the residues, drawn with a
fixed seed from the batch's own tokens, so the clean and every spliced run of a batch score the same masked
positions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from saeflow.errors import AssetError, DataError
from saeflow.models.base import ModelBatch, SubjectModel, TokenLosses

STANDARD_AA = "ACDEFGHIKLMNPQRSTVWY"


class _Stop(Exception):
    def __init__(self, hidden: Tensor):
        super().__init__()
        self.hidden = hidden


class EsmModel(SubjectModel):
    """A masked protein LM (ESM-2) loaded for inference."""

    kind: ClassVar[str] = "esm"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        max_length: int = 1024,
        mask_prob: float = 0.15,
        mask_seed: int = 0,
        device: str = "cpu",
    ):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.n_layers = model.config.num_hidden_layers
        self.d_model = model.config.hidden_size
        self.device = torch.device(device)
        self.max_length = int(max_length)
        self.mask_prob = float(mask_prob)
        self.mask_seed = int(mask_seed)
        self.mask_id = tokenizer.mask_token_id
        # <mask> marks a residue to predict: it is a stored (spliceable) position, unlike <cls>/<eos>/<pad>
        self.special_ids = torch.tensor(
            sorted(set(tokenizer.all_special_ids) - {self.mask_id}), dtype=torch.long
        )
        self._current_keep: Tensor | None = None
        self._x_id = tokenizer.convert_tokens_to_ids("X")

    @classmethod
    def load(
        cls,
        name_or_dir: str | Path,
        *,
        max_length: int = 1024,
        mask_prob: float = 0.15,
        mask_seed: int = 0,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> EsmModel:
        """Load a hub id (e.g. facebook/esm2_t6_8M_UR50D) or a local directory."""
        from transformers import AutoTokenizer, EsmForMaskedLM

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(name_or_dir))
            model = EsmForMaskedLM.from_pretrained(str(name_or_dir), dtype=dtype)
        except (OSError, ValueError) as err:
            raise AssetError(f"ESM model {name_or_dir} cannot be loaded: {str(err).splitlines()[0]}") from err
        return cls(
            model,
            tokenizer,
            name=Path(str(name_or_dir)).name,
            max_length=max_length,
            mask_prob=mask_prob,
            mask_seed=mask_seed,
            device=device,
        )

    @property
    def layers(self) -> Any:
        return self.model.esm.encoder.layer

    # --- records → tokens ----------------------------------------------------------------------------
    def encode(self, records: Sequence[Any]) -> list[list[int]]:
        """<cls> residues <eos> (truncated to max_length); records are strings or objects with `.sequence`."""
        out = []
        for i, rec in enumerate(records):
            seq = (rec if isinstance(rec, str) else rec.sequence).upper()
            if not seq.isalpha():
                rid = rec if isinstance(rec, str) else getattr(rec, "id", f"#{i}")
                raise DataError(f"protein {str(rid)[:40]!r}: sequence must hold amino-acid letters only")
            ids = self.tokenizer.convert_tokens_to_ids(list(seq[: self.max_length - 2]))
            ids = [
                self._x_id if i == self.tokenizer.unk_token_id else i for i in ids
            ]  # e.g. J → X (a residue)
            out.append([self.tokenizer.cls_token_id, *ids, self.tokenizer.eos_token_id])
        return out

    def batch(self, token_lists: Sequence[Sequence[int]]) -> ModelBatch:
        width = max(len(t) for t in token_lists)
        ids = torch.full((len(token_lists), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, toks in enumerate(token_lists):
            ids[row, : len(toks)] = torch.as_tensor(list(toks), dtype=torch.long)
            mask[row, : len(toks)] = 1
        return ModelBatch(ids.to(self.device), mask.to(self.device))

    def stored_mask(self, batch: ModelBatch) -> Tensor:
        special = torch.isin(batch.input_ids, self.special_ids.to(batch.input_ids.device))
        return batch.attention_mask.bool() & ~special

    # --- forward -------------------------------------------------------------------------------------
    def _forward(self, input_ids: Tensor, attention_mask: Tensor, keep: Tensor) -> Tensor:
        self._current_keep = keep
        try:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        finally:
            self._current_keep = None

    @torch.inference_mode()
    def hidden(self, batch: ModelBatch, layer: int) -> Tensor:
        def stop(_module, _args, output):
            raise _Stop(output[0] if isinstance(output, tuple) else output)

        handle = self.layers[self.check_layer(layer)].register_forward_hook(stop)
        try:
            self._forward(batch.input_ids, batch.attention_mask, self.stored_mask(batch))
        except _Stop as done:
            return done.hidden
        finally:
            handle.remove()
        raise RuntimeError(f"layer {layer} of {self.name} was never reached")

    @contextmanager
    def splice(self, layer: int, fn: Callable[[Tensor], Tensor]) -> Iterator[None]:
        """Within the block, encoder layer `layer`'s output h becomes fn(h) ([B, T, d]) at stored
        positions."""

        def replace(_module, _args, output):
            h = output[0] if isinstance(output, tuple) else output
            new = fn(h)
            if new.shape != h.shape:
                raise ValueError(
                    f"splice fn must keep the hidden state shape {tuple(h.shape)}; got {tuple(new.shape)}"
                )
            if self._current_keep is not None:
                new = torch.where(self._current_keep[..., None], new.to(h.dtype), h)
            return (new, *output[1:]) if isinstance(output, tuple) else new

        handle = self.layers[self.check_layer(layer)].register_forward_hook(replace)
        try:
            yield
        finally:
            handle.remove()

    def masked_positions(self, batch: ModelBatch) -> Tensor:
        """[B, T] bool: the residues masked for fidelity (seeded by mask_seed and each sequence's tokens, so a
        sequence gets the same mask in any batch); at least one residue per sequence."""
        stored = self.stored_mask(batch).cpu()
        out = torch.zeros_like(stored)
        for row in range(stored.shape[0]):
            toks = batch.input_ids[row][stored[row].to(batch.input_ids.device)].cpu()
            if len(toks) == 0:
                continue
            digest = hashlib.sha256(toks.numpy().tobytes() + str(self.mask_seed).encode()).digest()
            gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
            pick = torch.rand(len(toks), generator=gen) < self.mask_prob
            if not pick.any():
                pick[torch.randint(len(toks), (1,), generator=gen)] = True
            out[row, stored[row].nonzero().squeeze(1)[pick]] = True
        return out.to(batch.input_ids.device)

    @torch.inference_mode()
    def logits(self, batch: ModelBatch) -> Tensor:
        """[B, T, vocab] logits of the given tokens (masks included) under any active splice."""
        return self._forward(batch.input_ids, batch.attention_mask, self.stored_mask(batch))

    @torch.inference_mode()
    def token_losses(self, batch: ModelBatch) -> TokenLosses:
        """Masked-LM CE at the seeded masked residues (every one replaced by <mask>)."""
        masked = self.masked_positions(batch)
        ids = batch.input_ids.masked_fill(masked, self.mask_id)
        logits = self._forward(ids, batch.attention_mask, self.stored_mask(batch))
        ce = F.cross_entropy(logits.transpose(1, 2), batch.input_ids, reduction="none")
        return TokenLosses(torch.where(masked, ce, torch.zeros_like(ce)), masked)

    def residue_token_ids(self) -> Tensor:
        """[20] token ids of the standard amino acids (what masked decoding samples from)."""
        return torch.tensor(self.tokenizer.convert_tokens_to_ids(list(STANDARD_AA)), dtype=torch.long)
