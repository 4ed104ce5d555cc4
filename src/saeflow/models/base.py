"""The subject-model seam: what saeflow needs from any model whose activations an SAE studies.

A causal LM, a masked or recurrent protein LM and a sequential recommender all fit it: records (texts, protein
sequences, item-id histories) are encoded into token-id lists, batched, run up to a layer (no later layer is
run), and scored with a function spliced into that layer. `stored_mask` says which positions are data (special
tokens, padding and attention sinks are not): extraction stores only those, evaluation splices and scores only
those.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, NamedTuple

import torch


class ModelBatch(NamedTuple):
    input_ids: torch.Tensor
    """[B, T] int64, right-padded."""
    attention_mask: torch.Tensor
    """[B, T] int64, 1 on real positions (special tokens included), 0 on padding."""


class TokenLosses(NamedTuple):
    loss: torch.Tensor
    """[B, T] float32: the loss the model is scored on at each position (next-token CE, masked-LM CE,
    next-item CE, ...); 0 where `scored` is False."""
    scored: torch.Tensor
    """[B, T] bool: positions that count (e.g. not padding, not the last position of a causal LM, only the
    masked positions of a masked LM)."""


class SubjectModel(ABC):
    """A model under study, loaded for inference."""

    kind: ClassVar[str]
    """Registry name of the model kind (``causal_lm``, ``unirep``, ``esm``, ``sasrec``)."""
    name: str
    n_layers: int
    d_model: int
    device: torch.device

    @abstractmethod
    def encode(self, records: Sequence[Any]) -> list[list[int]]:
        """Token ids of each record, with the special tokens the model expects (truncated to its max
        length)."""

    @abstractmethod
    def batch(self, token_lists: Sequence[Sequence[int]]) -> ModelBatch:
        """Right-pad token lists into one batch on the model's device."""

    @abstractmethod
    def stored_mask(self, batch: ModelBatch) -> torch.Tensor:
        """[B, T] bool: positions whose activations are data (stored, spliced, scored)."""

    @abstractmethod
    def hidden(self, batch: ModelBatch, layer: int) -> torch.Tensor:
        """[B, T, d] output of layer `layer` (the SAE's site), without running any later layer."""

    @abstractmethod
    def splice(self, layer: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> contextmanager:
        """Context manager: within it, every forward replaces layer `layer`'s output h by fn(h) (same
        shape)."""

    @abstractmethod
    def token_losses(self, batch: ModelBatch) -> TokenLosses:
        """Per-position losses of a full forward (under any active splice)."""

    def check_layer(self, layer: int) -> int:
        from saeflow.errors import ConfigError

        if not 0 <= layer < self.n_layers:
            raise ConfigError(f"layer must be between 0 and {self.n_layers - 1} for {self.name}; got {layer}")
        return layer


def iter_batches(
    model: SubjectModel, token_lists: Sequence[Sequence[int]], batch_size: int
) -> Iterator[ModelBatch]:
    """Length-sorted batches (longest first; ties keep input order) of non-empty token lists."""
    order = sorted(
        (i for i, t in enumerate(token_lists) if len(t) > 0), key=lambda i: (-len(token_lists[i]), i)
    )
    for start in range(0, len(order), batch_size):
        yield model.batch([token_lists[i] for i in order[start : start + batch_size]])
