"""Spliced evaluation of an SAE inside its language model (METHODS.md § Evaluation metrics).

The hooked layer's output is replaced by x̂ at every position except position 0; next-token CE is scored on the
predictions made from positions ≥ 1 (the prediction from position 0 is identical in every run). The same
positions feed the reconstruction metrics (L0, FVU, dead/dense latents).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from saeflow.lm import LoadedLM, splice, tokenize_batches
from saeflow.metrics import (
    CEAccumulator,
    LMMetrics,
    ReconstructionAccumulator,
    ReconstructionMetrics,
    ce_loss_score,
    next_token_ce,
    prediction_mask,
)
from saeflow.sae import SparseAutoencoder


class EvalBatch(NamedTuple):
    input_ids: Tensor
    attention_mask: Tensor
    predict: Tensor
    """[B, T-1] bool: predictions that count (from positions ≥ 1, target not padding)."""


class BaselineResult(NamedTuple):
    n_tokens: int
    ce_clean: float
    ce_zero: float


class EvalResult(NamedTuple):
    recon: ReconstructionMetrics
    lm: LMMetrics
    ce_zero: float
    ce_loss_score: float

    def row(self) -> dict[str, Any]:
        return {
            **{f: getattr(self.recon, f) for f in ("l0", "fvu", "explained_variance", "mse", "dead_fraction",
                                                   "dense_fraction")},
            "n_tokens": self.lm.n_tokens,
            "ce_clean": self.lm.ce_clean,
            "ce_sae": self.lm.ce_sae,
            "ce_zero": self.ce_zero,
            "delta_ce": self.lm.delta_ce,
            "perplexity_clean": self.lm.perplexity_clean,
            "perplexity_sae": self.lm.perplexity_sae,
            "ce_loss_score": self.ce_loss_score,
            "kl": self.lm.kl,
        }


def eval_batches(lm: LoadedLM, texts: Sequence[str], *, max_tokens: int, batch_size: int,
                 max_length: int) -> list[EvalBatch]:
    """Deterministic batches of the first texts (in order) until `max_tokens` scored predictions."""
    batches, total = [], 0
    for batch in tokenize_batches(lm.tokenizer, texts, max_length, batch_size, sort_by_length=False):
        predict = prediction_mask(batch.attention_mask, skip_first=1)
        batches.append(EvalBatch(batch.input_ids, batch.attention_mask, predict))
        total += int(predict.sum())
        if total >= max_tokens:
            break
    return batches


def _replace_after_first(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def replace(h: Tensor) -> Tensor:
        out = h.clone()
        out[:, 1:] = fn(h[:, 1:])
        return out

    return replace


@torch.inference_mode()
def _logits(lm: LoadedLM, batch: EvalBatch) -> Tensor:
    ids, mask = batch.input_ids.to(lm.device), batch.attention_mask.to(lm.device)
    return lm.model(input_ids=ids, attention_mask=mask).logits.float()


def evaluate_baseline(lm: LoadedLM, layer: int, batches: Iterable[EvalBatch]) -> BaselineResult:
    """Clean CE and CE with the layer's output zero-ablated (positions ≥ 1): shared by every SAE of a layer."""
    nll_clean = nll_zero = 0.0
    n = 0
    for batch in batches:
        ce = next_token_ce(_logits(lm, batch), batch.input_ids, batch.predict)
        with splice(lm, layer, _replace_after_first(torch.zeros_like)):
            cz = next_token_ce(_logits(lm, batch), batch.input_ids, batch.predict)
        nll_clean, nll_zero, n = nll_clean + ce.sum_nll, nll_zero + cz.sum_nll, n + ce.n
    return BaselineResult(n, nll_clean / n, nll_zero / n)


def evaluate_sae(lm: LoadedLM, layer: int, sae: SparseAutoencoder, batches: Iterable[EvalBatch],
                 baseline: BaselineResult,
                 reconstruct: Callable[[Tensor], Tensor] | None = None) -> EvalResult:
    """Reconstruction and spliced-LM metrics of `sae` (or of a custom `reconstruct` function, e.g. boosted SAEs)."""
    recon_acc, ce_acc = ReconstructionAccumulator(), CEAccumulator()
    captured: dict[str, Tensor] = {}

    def through_sae(h: Tensor) -> Tensor:
        f, x_hat = sae.reconstruct_raw(h)
        if reconstruct is not None:
            x_hat = reconstruct(h)
        captured["h"], captured["f"], captured["x_hat"] = h, f, x_hat
        return x_hat

    for batch in batches:
        clean = _logits(lm, batch)
        with splice(lm, layer, _replace_after_first(through_sae)):
            spliced = _logits(lm, batch)
        ce_acc.update(clean, spliced, batch.input_ids, batch.predict)
        # every spliced, non-pad position (1..T-1) counts for the reconstruction metrics
        keep = batch.attention_mask[:, 1:].bool().to(captured["h"].device)
        recon_acc.update(captured["h"][keep].float(), captured["x_hat"][keep].float(), captured["f"][keep])
    lm_metrics = ce_acc.result()
    score = ce_loss_score(lm_metrics.ce_clean, lm_metrics.ce_sae, baseline.ce_zero)
    return EvalResult(recon_acc.result(), lm_metrics, baseline.ce_zero, score)
