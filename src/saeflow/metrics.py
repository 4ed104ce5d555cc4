"""Evaluation metrics with exact definitions (docs/methods.md § Evaluation metrics), streaming-friendly.

Notation: activations ``x`` [N, d], reconstruction ``x_hat`` [N, d], latents ``f`` [N, m], logits
[B, T, V]. Leading dimensions are flattened, so [B, T, d] works wherever [N, d] does.

* **L0**: mean over tokens of the number of non-zero latents.
* **FVU**: Σ‖x − x̂‖² / Σ‖x − μ‖² with μ the per-dimension mean over the whole set (not zero);
  explained variance = 1 − FVU.
* **Dead / dense**: share of latents that never fire / fire on more than ``dense_threshold`` of tokens.
* **CE / KL**: next-token cross-entropy and KL(p_clean ‖ p_other) summed over the predictions a mask
  selects; perplexity = exp(CE); CE-loss score = (CE_zero − CE_sae) / (CE_zero − CE_clean).
* **Decoder geometry**: each decoder row's max |cosine| to any other row; distinct = share below 0.5.

Accumulators hold only per-dimension / per-latent state (O(d + m)), never anything of size N; sums
are kept in float64. Logits are processed in chunks of masked positions, so the extra memory of a
call is O(chunk · V) on top of the logits the caller already holds.

An undefined metric (e.g. FVU of a constant set) is NaN, and a :class:`MetricWarning` says why.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch

from saeflow.errors import DataError

DEFAULT_DENSE_THRESHOLD = 0.1
DEFAULT_DISTINCT_THRESHOLD = 0.5


class MetricWarning(RuntimeWarning):
    """A metric is undefined for the data given (its value is NaN); the message says why."""


def _undefined(reason: str) -> float:
    warnings.warn(reason, MetricWarning, stacklevel=3)
    return math.nan


def _rows(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() < 1:
        raise ValueError(f"{name} must have a feature dimension; got a scalar")
    return t.reshape(-1, t.shape[-1])


# --------------------------------------------------------------------------- reconstruction


def l0(latents: torch.Tensor) -> float:
    """Mean over tokens of the number of non-zero latents; ``latents`` is [..., m]."""
    f = _rows(latents, "latents")
    if f.shape[0] == 0:
        raise DataError("l0: no tokens given")
    return (f != 0).sum().item() / f.shape[0]


class _Moments:
    """Streaming per-dimension count, mean and M2 = Σ(x − mean)², merged batch by batch in float64.

    Each batch is centred on its own mean (two-pass) and merged with Chan et al.'s update, which is
    algebraically Σ‖x − μ‖² = Σ‖x‖² − N‖μ‖² but does not cancel catastrophically when |μ| ≫ σ (residual
    streams have such dimensions). A single batch gives exactly the two-pass one-shot value.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None
        self.sq_err: torch.Tensor | None = None

    def update(self, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        if x.shape != x_hat.shape:
            raise ValueError(
                f"x and x_hat must have the same shape; got {tuple(x.shape)} and {tuple(x_hat.shape)}"
            )
        x64 = _rows(x, "x").double()
        nb = x64.shape[0]
        if nb == 0:
            return
        if self.mean is not None and x64.shape[1] != self.mean.shape[0]:
            raise ValueError(f"x has {x64.shape[1]} dimensions; earlier batches had {self.mean.shape[0]}")
        sq_err = (x64 - _rows(x_hat, "x_hat").double()).square().sum()
        mean_b = x64.mean(0)
        m2_b = (x64 - mean_b).square().sum(0)
        del x64
        if self.mean is None:
            self.n, self.mean, self.m2, self.sq_err = nb, mean_b, m2_b, sq_err
            return
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + delta.square() * (self.n * nb / n)
        self.sq_err = self.sq_err + sq_err
        self.n = n

    @property
    def d(self) -> int:
        return 0 if self.mean is None else self.mean.shape[0]

    def fvu(self) -> float:
        if self.n == 0:
            raise DataError("fvu: no tokens given")
        total_var = self.m2.sum().item()
        if total_var == 0:
            return _undefined(
                f"FVU is undefined: all {self.n} activation vectors are identical (Σ‖x − μ‖² = 0)"
            )
        return self.sq_err.item() / total_var


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Fraction of variance unexplained, Σ‖x − x̂‖² / Σ‖x − μ‖², μ = per-dimension mean of ``x``."""
    m = _Moments()
    m.update(x, x_hat)
    return m.fvu()


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """1 − FVU."""
    return 1.0 - fvu(x, x_hat)


class ReconstructionMetrics(NamedTuple):
    n_tokens: int
    l0: float
    """Mean number of non-zero latents per token."""
    mse: float
    """Mean squared error per element: Σ‖x − x̂‖² / (N · d)."""
    fvu: float
    explained_variance: float
    dead_fraction: float
    """Share of latents that never fired on the tokens seen."""
    dense_fraction: float
    """Share of latents that fired on more than ``dense_threshold`` of the tokens seen."""


def _fire_counts_of(latents: torch.Tensor) -> torch.Tensor:
    """Per column of dense [N, m] latents, the number of non-zero entries (int64 [m]). Sparse codes are
    counted from their column ids (a column reduction over [N, m] is ≈ 5× slower on CPU), dense ones by the
    reduction."""
    if int(torch.count_nonzero(latents)) <= 0.05 * latents.numel():
        return torch.bincount(latents.nonzero(as_tuple=True)[1], minlength=latents.shape[1])
    return (latents != 0).sum(0, dtype=torch.int64)


class ReconstructionAccumulator:
    """Streams (x, x̂, latents) batches; :meth:`result` gives the metrics over everything seen.

    ``latents`` is a dense [..., m] tensor or a sparse COO [N, m] tensor; a latent fires on a token
    when its value is non-zero. State stays on the device of the first batch.
    """

    def __init__(self, dense_threshold: float = DEFAULT_DENSE_THRESHOLD) -> None:
        if not 0.0 <= dense_threshold <= 1.0:
            raise ValueError(f"dense_threshold must be in [0, 1]; got {dense_threshold}")
        self.dense_threshold = dense_threshold
        self._moments = _Moments()
        self._fire_counts: torch.Tensor | None = None
        self._n_active = 0

    @property
    def n_tokens(self) -> int:
        return self._moments.n

    @property
    def fire_counts(self) -> torch.Tensor:
        """Per latent, the number of tokens it fired on so far: int64 [m], on the CPU (a copy)."""
        if self._fire_counts is None:
            raise DataError("fire_counts: no batches seen yet")
        return self._fire_counts.detach().cpu().clone()

    def update(self, x: torch.Tensor, x_hat: torch.Tensor, latents: torch.Tensor) -> None:
        n = _rows(x, "x").shape[0]
        if latents.is_sparse:
            if latents.dim() != 2:
                raise ValueError(f"sparse latents must be [N, m]; got {tuple(latents.shape)}")
            f = latents.coalesce()
            m, n_f = f.shape[1], f.shape[0]
            nz = f.values() != 0
            counts = torch.bincount(f.indices()[1][nz], minlength=m)
        else:
            f = _rows(latents, "latents")
            m, n_f = f.shape[1], f.shape[0]
            counts = _fire_counts_of(f)
        if n_f != n:
            raise ValueError(f"latents cover {n_f} tokens but x has {n}")
        if self._fire_counts is not None and m != self._fire_counts.shape[0]:
            raise ValueError(f"latents have {m} columns; earlier batches had {self._fire_counts.shape[0]}")
        self._moments.update(x, x_hat)
        if self._fire_counts is None:
            self._fire_counts = torch.zeros(m, dtype=torch.int64, device=counts.device)
        self._fire_counts += counts.to(self._fire_counts.device)
        self._n_active += int(counts.sum().item())

    def result(self) -> ReconstructionMetrics:
        n = self.n_tokens
        if n == 0:
            raise DataError("ReconstructionAccumulator: no tokens were seen; the evaluation set is empty")
        fvu_ = self._moments.fvu()
        counts = self._fire_counts
        return ReconstructionMetrics(
            n_tokens=n,
            l0=self._n_active / n,
            mse=self._moments.sq_err.item() / (n * self._moments.d),
            fvu=fvu_,
            explained_variance=1.0 - fvu_,
            dead_fraction=(counts == 0).double().mean().item(),
            dense_fraction=(counts.double() / n > self.dense_threshold).double().mean().item(),
        )


# --------------------------------------------------------------------------- language model

DEFAULT_CHUNK = 1024
"""Masked positions per log_softmax call: extra memory ≈ 3 · chunk · V floats."""


class CESum(NamedTuple):
    sum_nll: float
    n: int


class KLSum(NamedTuple):
    sum_kl: float
    n: int


def prediction_mask(attention_mask: torch.Tensor, skip_first: int = 0) -> torch.Tensor:
    """[B, T] attention mask → [B, T−1] mask of predictions whose source and target are both real tokens.

    Entry t is the prediction of token t+1 from position t. ``skip_first`` also drops the predictions
    made at positions < skip_first (e.g. 1 to leave out the prediction made at BOS / position 0).
    """
    am = attention_mask.bool()
    mask = am[:, :-1] & am[:, 1:]
    if skip_first > 0:
        mask[:, :skip_first] = False
    return mask


def _check_mask(mask: torch.Tensor, logits: torch.Tensor, allowed: tuple[int, ...], name: str) -> None:
    if logits.dim() != 3:
        raise ValueError(f"{name}: logits must be [B, T, V]; got {tuple(logits.shape)}")
    b, t = logits.shape[:2]
    if mask.dim() != 2 or mask.shape[0] != b or mask.shape[1] not in [t - k for k in allowed]:
        want = " or ".join(f"[{b}, {t - k}]" for k in allowed)
        raise ValueError(
            f"{name}: mask must be {want} (entry t = the prediction made at position t, "
            f"see prediction_mask); got {tuple(mask.shape)}"
        )


def _log_probs(logits: torch.Tensor, bi: torch.Tensor, ti: torch.Tensor) -> torch.Tensor:
    rows = logits[bi, ti]
    dtype = torch.promote_types(rows.dtype, torch.float32)
    return torch.log_softmax(rows.to(dtype), dim=-1)


def _kl_rows(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """Per row Σ_v p (log p − log q); terms with p = 0 are 0 (also where q = 0)."""
    p = lp.exp()
    return torch.where(p > 0, p * (lp - lq), torch.zeros((), dtype=lp.dtype, device=lp.device)).sum(-1)


def _lm_sums(
    logits_clean: torch.Tensor,
    logits_other: torch.Tensor | None,
    input_ids: torch.Tensor | None,
    mask: torch.Tensor,
    chunk: int,
    want_ce: bool,
    want_kl: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """float64 sums of NLL(clean), NLL(other), KL(clean‖other) over masked positions, and their count."""
    bi, ti = mask.to(logits_clean.device).bool().nonzero(as_tuple=True)
    zero = torch.zeros((), dtype=torch.float64, device=logits_clean.device)
    if input_ids is not None:
        input_ids = input_ids.to(logits_clean.device)
    nll_c, nll_o, kl = zero, zero, zero
    for s in range(0, bi.numel(), chunk):
        b, t = bi[s : s + chunk], ti[s : s + chunk]
        lp = _log_probs(logits_clean, b, t)
        lq = None if logits_other is None else _log_probs(logits_other, b, t)
        if want_ce:
            target = input_ids[b, t + 1].unsqueeze(-1)
            nll_c = nll_c - lp.gather(-1, target).double().sum()
            if lq is not None:
                nll_o = nll_o - lq.gather(-1, target).double().sum()
        if want_kl:
            kl = kl + _kl_rows(lp, lq).double().sum()
        del lp, lq
    return nll_c, nll_o, kl, bi.numel()


def next_token_ce(
    logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor, chunk: int = DEFAULT_CHUNK
) -> CESum:
    """Summed next-token NLL: logits[b, t] predicts input_ids[b, t+1].

    ``mask`` is [B, T−1] bool: mask[b, t] says whether the prediction of input_ids[b, t+1] from
    position t counts (build it from an attention mask with :func:`prediction_mask`).
    Mean CE = sum_nll / n.
    """
    _check_mask(mask, logits, (1,), "next_token_ce")
    if input_ids.shape != logits.shape[:2]:
        raise ValueError(
            f"next_token_ce: input_ids must be {tuple(logits.shape[:2])}; got {tuple(input_ids.shape)}"
        )
    nll, _, _, n = _lm_sums(logits, None, input_ids, mask, chunk, want_ce=True, want_kl=False)
    return CESum(nll.item(), n)


def kl_divergence(
    logits_clean: torch.Tensor, logits_other: torch.Tensor, mask: torch.Tensor, chunk: int = DEFAULT_CHUNK
) -> KLSum:
    """Σ over masked positions of KL(p_clean ‖ p_other), p = softmax(logits) at that position.

    ``mask`` is [B, T] (any position) or [B, T−1] (the positions that predict a next token, as for
    :func:`next_token_ce`); mask[b, t] refers to logits[b, t]. Mean KL = sum_kl / n.
    """
    _check_mask(mask, logits_clean, (0, 1), "kl_divergence")
    if logits_other.shape != logits_clean.shape:
        raise ValueError(
            f"kl_divergence: logits shapes differ: {tuple(logits_clean.shape)} and "
            f"{tuple(logits_other.shape)}"
        )
    _, _, kl, n = _lm_sums(logits_clean, logits_other, None, mask, chunk, want_ce=False, want_kl=True)
    return KLSum(kl.item(), n)


def perplexity(ce: float) -> float:
    """exp(CE) (inf if CE is too large to exponentiate)."""
    return math.exp(ce) if ce < 709.0 else math.inf


def ce_loss_score(ce_clean: float, ce_sae: float, ce_zero: float) -> float:
    """(CE_zero − CE_sae) / (CE_zero − CE_clean): 1 = as good as clean, 0 = as bad as zero-ablation."""
    denom = ce_zero - ce_clean
    if denom == 0 or not math.isfinite(denom):
        return _undefined(
            f"CE-loss score is undefined: CE_zero − CE_clean = {denom} "
            f"(CE_zero = {ce_zero}, CE_clean = {ce_clean}); zero-ablating the layer "
            "did not change the loss"
        )
    return (ce_zero - ce_sae) / denom


class LMMetrics(NamedTuple):
    n_tokens: int
    """Predictions counted (masked positions)."""
    ce_clean: float
    """Mean next-token CE (nats) of the unmodified model."""
    ce_sae: float
    """Mean next-token CE (nats) with the SAE reconstruction spliced in."""
    kl: float
    """Mean KL(p_clean ‖ p_sae) (nats) per counted position."""
    perplexity_clean: float
    perplexity_sae: float
    delta_ce: float
    """ce_sae − ce_clean."""


class CEAccumulator:
    """Sums CE (clean and SAE-spliced) and KL(clean ‖ SAE) across batches, over the same masked
    predictions."""

    def __init__(self, chunk: int = DEFAULT_CHUNK) -> None:
        self.chunk = chunk
        self.n_tokens = 0
        self._sums: torch.Tensor | None = None  # float64 [3]: nll_clean, nll_sae, kl

    def update(
        self,
        logits_clean: torch.Tensor,
        logits_sae: torch.Tensor,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
    ) -> None:
        """``mask`` is [B, T−1] as for :func:`next_token_ce`; KL is taken at the same positions."""
        _check_mask(mask, logits_clean, (1,), "CEAccumulator.update")
        if logits_sae.shape != logits_clean.shape or input_ids.shape != logits_clean.shape[:2]:
            raise ValueError(
                f"CEAccumulator.update: shapes differ: logits_clean {tuple(logits_clean.shape)}, "
                f"logits_sae {tuple(logits_sae.shape)}, input_ids {tuple(input_ids.shape)}"
            )
        nll_c, nll_s, kl, n = _lm_sums(
            logits_clean, logits_sae, input_ids, mask, self.chunk, want_ce=True, want_kl=True
        )
        sums = torch.stack([nll_c, nll_s, kl])
        self._sums = sums if self._sums is None else self._sums + sums.to(self._sums.device)
        self.n_tokens += n

    def result(self) -> LMMetrics:
        if self.n_tokens == 0:
            raise DataError("CEAccumulator: no predictions were counted (empty data or an all-False mask)")
        ce_clean, ce_sae, kl = (v / self.n_tokens for v in self._sums.tolist())
        return LMMetrics(
            n_tokens=self.n_tokens,
            ce_clean=ce_clean,
            ce_sae=ce_sae,
            kl=kl,
            perplexity_clean=perplexity(ce_clean),
            perplexity_sae=perplexity(ce_sae),
            delta_ce=ce_sae - ce_clean,
        )


# --------------------------------------------------------------------------- decoder geometry


class DecoderGeometry(NamedTuple):
    max_abs_cos: torch.Tensor
    """[m] float32 (CPU): each latent's max |cosine| to any other latent's decoder row."""
    mean_max_abs_cos: float
    distinct_fraction: float
    """Share of latents whose max |cosine| is < threshold."""


def decoder_cosine_stats(
    W_dec: torch.Tensor, threshold: float = DEFAULT_DISTINCT_THRESHOLD, chunk: int = 4096
) -> DecoderGeometry:
    """Nearest-neighbour |cosine| of decoder rows (``W_dec`` is [m, d], one row per latent).

    Computed ``chunk`` rows at a time, so the extra memory is O(chunk · m). A zero row has cosine 0
    to everything.
    """
    if W_dec.dim() != 2 or W_dec.shape[0] < 2:
        raise ValueError(f"W_dec must be [m, d] with m ≥ 2; got {tuple(W_dec.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be ≥ 1; got {chunk}")
    w = W_dec.detach().to(torch.promote_types(W_dec.dtype, torch.float32))
    w = w / w.norm(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    m = w.shape[0]
    out = torch.empty(m, dtype=w.dtype, device=w.device)
    for s in range(0, m, chunk):
        e = min(s + chunk, m)
        sims = (w[s:e] @ w.T).abs_()
        idx = torch.arange(e - s, device=w.device)
        sims[idx, idx + s] = -1.0  # not its own neighbour
        out[s:e] = sims.amax(dim=1).clamp_(max=1.0)
        del sims
    out = out.float().cpu()
    return DecoderGeometry(
        max_abs_cos=out,
        mean_max_abs_cos=out.double().mean().item(),
        distinct_fraction=(out < threshold).double().mean().item(),
    )
