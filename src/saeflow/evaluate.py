"""Spliced evaluation of an SAE inside its language model (docs/methods.md § Evaluation metrics).

The hooked layer's output is replaced by x̂ at every real position except position 0 and norm outliers
(attention-sink tokens, saeflow.outliers); next-token CE is scored on the predictions made from positions ≥ 1
(the prediction from position 0 is identical in every run). The spliced positions feed the reconstruction
metrics (L0, FVU, dead/dense latents).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from saeflow.metrics import (
    CEAccumulator,
    LMMetrics,
    ReconstructionAccumulator,
    ReconstructionMetrics,
    ce_loss_score,
    next_token_ce,
    prediction_mask,
)
from saeflow.models.causal_lm import LoadedLM, encode, length_sorted_batches, pad_batch, splice
from saeflow.outliers import DEFAULT_OUTLIER_RATIO, outlier_threshold
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
    n_outliers: int = 0
    """Positions left unspliced as norm outliers (saeflow.outliers)."""

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
            "n_outliers": self.n_outliers,
        }


def eval_batches(lm: LoadedLM, texts: Sequence[str], *, max_tokens: int, batch_size: int,
                 max_length: int, encode_chunk: int = 256) -> list[EvalBatch]:
    """The first texts (in order) holding `max_tokens` scored predictions, batched by length (less padding).

    A text of n tokens scores n − 2 predictions (the one made from position 0 does not count).
    """
    chosen: list[list[int]] = []
    total = 0
    for start in range(0, len(texts), encode_chunk):
        for toks in encode(lm.tokenizer, texts[start:start + encode_chunk], max_length):
            if len(toks) < 3:
                continue
            chosen.append(toks)
            total += len(toks) - 2
            if total >= max_tokens:
                break
        if total >= max_tokens:
            break
    batches = []
    for group in length_sorted_batches([len(t) for t in chosen], batch_size):
        ids, mask = pad_batch([chosen[i] for i in group], lm.tokenizer.pad_token_id)
        batches.append(EvalBatch(ids, mask, prediction_mask(mask, skip_first=1)))
    return batches


def _splice_inliers(fn: Callable[[Tensor], Tensor], batch: EvalBatch, ratio: float,
                    counts: dict[str, int]) -> Callable[[Tensor], Tensor]:
    """A splice function replacing h by fn(h) at the real positions ≥ 1 that are not norm outliers
    (saeflow.outliers); position 0, padding and outliers keep their clean value. fn gets [n, d] rows."""

    def replace(h: Tensor) -> Tensor:
        rest = h[:, 1:]
        valid = batch.attention_mask[:, 1:].bool().to(h.device)
        norms = rest.float().norm(dim=-1)
        chosen = valid & (norms <= outlier_threshold(norms[valid], ratio))
        counts["outliers"] = counts.get("outliers", 0) + int((valid & ~chosen).sum())
        out = h.clone()
        out[:, 1:][chosen] = fn(rest[chosen]).to(h.dtype)
        return out

    return replace


@torch.inference_mode()
def _logits(lm: LoadedLM, batch: EvalBatch) -> Tensor:
    ids, mask = batch.input_ids.to(lm.device), batch.attention_mask.to(lm.device)
    return lm.model(input_ids=ids, attention_mask=mask).logits.float()


def evaluate_baseline(lm: LoadedLM, layer: int, batches: Iterable[EvalBatch],
                      outlier_ratio: float = DEFAULT_OUTLIER_RATIO) -> BaselineResult:
    """Clean CE and CE with the layer's output zero-ablated (where an SAE would be spliced): shared by every SAE
    of a layer."""
    nll_clean = nll_zero = 0.0
    n = 0
    counts: dict[str, int] = {}
    for batch in batches:
        ce = next_token_ce(_logits(lm, batch), batch.input_ids, batch.predict)
        with splice(lm, layer, _splice_inliers(torch.zeros_like, batch, outlier_ratio, counts)):
            cz = next_token_ce(_logits(lm, batch), batch.input_ids, batch.predict)
        nll_clean, nll_zero, n = nll_clean + ce.sum_nll, nll_zero + cz.sum_nll, n + ce.n
    return BaselineResult(n, nll_clean / n, nll_zero / n)


def evaluate_sae(lm: LoadedLM, layer: int, sae: SparseAutoencoder, batches: Iterable[EvalBatch],
                 baseline: BaselineResult, outlier_ratio: float = DEFAULT_OUTLIER_RATIO) -> EvalResult:
    """Reconstruction and spliced-LM metrics of `sae` (anything with `reconstruct_raw`, e.g. a BoostedSAE)."""
    recon_acc, ce_acc = ReconstructionAccumulator(), CEAccumulator()
    counts: dict[str, int] = {}

    def through_sae(rows: Tensor) -> Tensor:
        f, x_hat = sae.reconstruct_raw(rows)
        recon_acc.update(rows.float(), x_hat.float(), f)
        return x_hat

    for batch in batches:
        clean = _logits(lm, batch)
        with splice(lm, layer, _splice_inliers(through_sae, batch, outlier_ratio, counts)):
            spliced = _logits(lm, batch)
        ce_acc.update(clean, spliced, batch.input_ids, batch.predict)
    lm_metrics = ce_acc.result()
    score = ce_loss_score(lm_metrics.ce_clean, lm_metrics.ce_sae, baseline.ce_zero)
    return EvalResult(recon_acc.result(), lm_metrics, baseline.ce_zero, score, counts.get("outliers", 0))
