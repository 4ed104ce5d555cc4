"""Spliced evaluation of an SAE inside its language model (docs/methods.md § Evaluation metrics).

The hooked layer's output is replaced by x̂ at every real position except position 0 and norm outliers
(attention-sink tokens, saeflow.outliers); next-token CE is scored on the predictions made from positions ≥ 1
(the prediction from position 0 is identical in every run). The spliced positions feed the reconstruction
metrics (L0, FVU, dead/dense latents). SAELens' convention (§ Metric conventions) is reported beside it:
every real position spliced / zero-ablated, every prediction scored, explained variance over every row.

Shared work (:class:`EvalCache`, built once per eval set × model × layer by :func:`build_cache`): the token
batches, the residual stream at the layer, the clean CE, what KL needs and the zero-ablation CEs. An SAE's
evaluation (:func:`evaluate_sae_cached`) then only runs the layers above the SAE's layer on the spliced
residual (:func:`run_from_layer`). KL(p_clean ‖ p_sae) needs the clean distribution at every scored position,
too big to store (2,048 × 49,152 floats ≈ 400 MB); for a linear LM head z = W h + b it is exact from d + 2
numbers per position instead:

    KL = Σ_v p_v log p_v − Σ_v p_v z'_v + lse(z'),   Σ_v p_v z'_v = (Wᵀp)·h' + p·b,

so the cache holds ē = Wᵀp_clean [n, d] per scored position, Σ p log p and Σ p·b (sums over positions).
A head that is not linear in its input (logit soft-capping) falls back to re-running the clean upper pass.

:func:`evaluate_baseline` / :func:`evaluate_sae` are the straightforward full-forward reference (two full
forward passes per SAE); tests check the cached path against them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from saeflow.metrics import (
    DEFAULT_CHUNK,
    CEAccumulator,
    LMMetrics,
    ReconstructionAccumulator,
    ReconstructionMetrics,
    ce_loss_score,
    next_token_ce,
    perplexity,
    prediction_mask,
)
from saeflow.models.causal_lm import LoadedLM, encode, length_sorted_batches, pad_batch, splice
from saeflow.outliers import DEFAULT_OUTLIER_RATIO, outlier_threshold
from saeflow.sae import SparseAutoencoder

CACHE_FORMAT = 1


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
    saelens: dict[str, float] | None = None
    """SAELens' convention (docs/methods.md § Metric conventions): ce_clean/ce_sae/ce_zero_saelens,
    ce_loss_score_saelens, explained_variance_saelens, n_tokens_saelens; None when not computed."""

    def row(self) -> dict[str, Any]:
        return {
            **{
                f: getattr(self.recon, f)
                for f in ("l0", "fvu", "explained_variance", "mse", "dead_fraction", "dense_fraction")
            },
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
            **(self.saelens or {}),
        }


def eval_batches(
    lm: LoadedLM,
    texts: Sequence[str],
    *,
    max_tokens: int,
    batch_size: int,
    max_length: int,
    encode_chunk: int = 256,
) -> list[EvalBatch]:
    """The first texts (in order) holding `max_tokens` scored predictions, batched by length (less padding).

    A text of n tokens scores n − 2 predictions (the one made from position 0 does not count).
    """
    chosen: list[list[int]] = []
    total = 0
    for start in range(0, len(texts), encode_chunk):
        for toks in encode(lm.tokenizer, texts[start : start + encode_chunk], max_length):
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
        batches.append(_batch(ids, mask))
    return batches


def _batch(ids: Tensor, mask: Tensor) -> EvalBatch:
    return EvalBatch(ids, mask, prediction_mask(mask, skip_first=1))


def spliced_positions(h: Tensor, attention_mask: Tensor, ratio: float) -> Tensor:
    """[B, T-1] bool over positions ≥ 1: the real positions that are not norm outliers (saeflow.outliers) of
    this batch, i.e. where saeflow's convention splices the SAE in."""
    rest = h[:, 1:]
    valid = attention_mask[:, 1:].bool().to(h.device)
    norms = rest.float().norm(dim=-1)
    return valid & (norms <= outlier_threshold(norms[valid], ratio))


def _splice_inliers(
    fn: Callable[[Tensor], Tensor], batch: EvalBatch, ratio: float, counts: dict[str, int]
) -> Callable[[Tensor], Tensor]:
    """A splice function replacing h by fn(h) at the real positions ≥ 1 that are not norm outliers
    (saeflow.outliers); position 0, padding and outliers keep their clean value. fn gets [n, d] rows."""

    def replace(h: Tensor) -> Tensor:
        chosen = spliced_positions(h, batch.attention_mask, ratio)
        valid = batch.attention_mask[:, 1:].bool().to(h.device)
        counts["outliers"] = counts.get("outliers", 0) + int((valid & ~chosen).sum())
        out = h.clone()
        out[:, 1:][chosen] = fn(h[:, 1:][chosen]).to(h.dtype)
        return out

    return replace


@torch.inference_mode()
def _logits(lm: LoadedLM, batch: EvalBatch) -> Tensor:
    ids, mask = batch.input_ids.to(lm.device), batch.attention_mask.to(lm.device)
    return lm.model(input_ids=ids, attention_mask=mask).logits.float()


# ----------------------------------------------------------------------------- reference: full forward passes


def evaluate_baseline(
    lm: LoadedLM, layer: int, batches: Iterable[EvalBatch], outlier_ratio: float = DEFAULT_OUTLIER_RATIO
) -> BaselineResult:
    """Clean CE and CE with the layer's output zero-ablated (where an SAE would be spliced), by full forward
    passes (the reference of :func:`build_cache`)."""
    nll_clean = nll_zero = 0.0
    n = 0
    counts: dict[str, int] = {}
    for batch in batches:
        ce = next_token_ce(_logits(lm, batch), batch.input_ids, batch.predict)
        with splice(lm, layer, _splice_inliers(torch.zeros_like, batch, outlier_ratio, counts)):
            cz = next_token_ce(_logits(lm, batch), batch.input_ids, batch.predict)
        nll_clean, nll_zero, n = nll_clean + ce.sum_nll, nll_zero + cz.sum_nll, n + ce.n
    return BaselineResult(n, nll_clean / n, nll_zero / n)


def evaluate_sae(
    lm: LoadedLM,
    layer: int,
    sae: SparseAutoencoder,
    batches: Iterable[EvalBatch],
    baseline: BaselineResult,
    outlier_ratio: float = DEFAULT_OUTLIER_RATIO,
) -> EvalResult:
    """Reconstruction and spliced-LM metrics of `sae` (anything with `reconstruct_raw`, e.g. a BoostedSAE) by
    a full clean and a full spliced forward pass per batch (the reference of :func:`evaluate_sae_cached`;
    saeflow's convention only)."""
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


# ------------------------------------------------------------------------------ running the upper layers only

_TUPLE_OUTPUT: weakref.WeakKeyDictionary[torch.nn.Module, bool] = weakref.WeakKeyDictionary()


@contextmanager
def _forward_replaced(
    modules: Sequence[torch.nn.Module], forwards: Sequence[Callable[..., Any]]
) -> Iterator[None]:
    """Within the block, each module's forward is the given function; an instance-level forward it had before
    (e.g. one set by accelerate) is restored afterwards."""
    saved = [m.__dict__.get("forward") for m in modules]
    for m, fn in zip(modules, forwards, strict=True):
        m.forward = fn
    try:
        yield
    finally:
        for m, old in zip(modules, saved, strict=True):
            if old is None:
                del m.forward
            else:
                m.forward = old


def _layer_returns_tuple(lm: LoadedLM) -> bool:
    """Whether this model's decoder layers return a tuple (older transformers) or the hidden state alone:
    probed once with a two-token forward stopped at layer 0."""
    key = lm.model
    if key not in _TUPLE_OUTPUT:
        seen: list[bool] = []

        class _Stop(Exception):
            pass

        def hook(_module, _args, output):
            seen.append(isinstance(output, tuple))
            raise _Stop

        handle = lm.layers[0].register_forward_hook(hook)
        try:
            with torch.inference_mode():
                lm.model(input_ids=torch.zeros(1, 2, dtype=torch.long, device=lm.device), use_cache=False)
        except _Stop:
            pass
        finally:
            handle.remove()
        _TUPLE_OUTPUT[key] = bool(seen and seen[0])
    return _TUPLE_OUTPUT[key]


@contextmanager
def _skip_to_layer(lm: LoadedLM, layer: int, hidden: Tensor) -> Iterator[None]:
    """Within the block, decoder layers 0..layer-1 pass their input through and layer `layer` outputs `hidden`
    (no computation below the layer); the model itself still builds its masks, position ids and rotary
    embeddings, so every architecture whose layers find_layers knows runs unchanged above the layer."""
    as_tuple = _layer_returns_tuple(lm)
    patched = lm.layers[: layer + 1]

    def make(i: int):
        def forward(*args: Any, **kwargs: Any):
            h = hidden if i == layer else (kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])
            return (h,) if as_tuple else h

        return forward

    with _forward_replaced(list(patched), [make(i) for i in range(len(patched))]):
        yield


def run_from_layer(
    lm: LoadedLM,
    layer: int,
    input_ids: Tensor,
    attention_mask: Tensor,
    hidden: Tensor,
    *,
    head_input: bool = False,
    rows: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Float32 logits [B, T, V] of the model with layer `layer`'s output set to `hidden` [B, T, d], running
    only the layers above it (+ final norm + head); with head_input, also the LM head's input [B, T, d].

    With `rows` ([B, T] bool; the head must be an nn.Linear whose output is the logits), the head runs only
    there: logits [n, V] and head input [n, d] of those positions (row-major), not of padding or unscored
    ones.
    """
    captured: list[Tensor] = []
    head = lm.model.get_output_embeddings()
    handle = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0])) if head_input else None
    # with rows, the model returns the head's input; the head is applied below, to those rows only
    identity = _forward_replaced([head], [lambda x: x]) if rows is not None else nullcontext()
    try:
        with torch.inference_mode(), identity, _skip_to_layer(lm, layer, hidden.to(lm.device, lm.dtype)):
            out = lm.model(
                input_ids=input_ids.to(lm.device),
                attention_mask=attention_mask.to(lm.device),
                use_cache=False,
            ).logits
    finally:
        if handle is not None:
            handle.remove()
    if rows is None:
        return out.float(), (captured[0] if captured else None)
    h = out[rows.to(out.device)]
    with torch.inference_mode():
        logits = torch.nn.functional.linear(h, head.weight, head.bias).float()
    return logits, h


def _head_rows(mask: Tensor) -> Tensor:
    """[B, T-1] prediction mask → [B, T] mask of the positions whose logits it scores."""
    rows = torch.zeros(mask.shape[0], mask.shape[1] + 1, dtype=torch.bool, device=mask.device)
    rows[:, :-1] = mask
    return rows


# ------------------------------------------------------------------------------ the shared cache


@dataclass
class EvalCache:
    """What every SAE evaluation of one eval set × model × layer shares (saved as safetensors + JSON)."""

    layer: int
    batches: list[EvalBatch]
    hidden: list[Tensor]
    """Per batch, the clean residual stream [B, T, d] at the layer (every position)."""
    ebar: list[Tensor] | None
    """Per batch, Wᵀp_clean [n_scored, d] (float32) at the scored predictions in mask order; None: the head is
    not linear and the clean upper pass is re-run."""
    stats: dict[str, Any] = field(default_factory=dict)
    """n_tokens, ce_clean, ce_zero, sum_neg_entropy, sum_pb, and the SAELens convention's n_tokens_saelens,
    ce_clean_saelens, ce_zero_saelens."""

    def baseline(self) -> BaselineResult:
        return BaselineResult(self.stats["n_tokens"], self.stats["ce_clean"], self.stats["ce_zero"])

    def save(self, safetensors_path: str | Path, json_path: str | Path) -> None:
        from safetensors.torch import save_file

        from saeflow.io import atomic_path, write_json

        tensors: dict[str, Tensor] = {}
        for i, (b, h) in enumerate(zip(self.batches, self.hidden, strict=True)):
            tensors[f"{i}.input_ids"] = b.input_ids.contiguous()
            tensors[f"{i}.attention_mask"] = b.attention_mask.contiguous()
            tensors[f"{i}.hidden"] = h.detach().cpu().contiguous()
            if self.ebar is not None:
                tensors[f"{i}.ebar"] = self.ebar[i].detach().cpu().contiguous()
        with atomic_path(safetensors_path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": str(CACHE_FORMAT)})
        write_json(
            json_path,
            {
                **self.stats,
                "layer": self.layer,
                "n_batches": len(self.batches),
                "linear_head": self.ebar is not None,
                "format": CACHE_FORMAT,
            },
        )

    @classmethod
    def load(cls, safetensors_path: str | Path, json_path: str | Path) -> EvalCache:
        from safetensors.torch import load_file

        from saeflow.io import read_json

        stats = dict(read_json(json_path))
        t = load_file(str(safetensors_path))
        n = int(stats.pop("n_batches"))
        linear = bool(stats.pop("linear_head"))
        layer = int(stats.pop("layer"))
        stats.pop("format", None)
        batches = [_batch(t[f"{i}.input_ids"], t[f"{i}.attention_mask"]) for i in range(n)]
        return cls(
            layer,
            batches,
            [t[f"{i}.hidden"] for i in range(n)],
            [t[f"{i}.ebar"] for i in range(n)] if linear else None,
            stats,
        )


def _scored(logits: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    return mask.to(logits.device).bool().nonzero(as_tuple=True)


def _head_linear(lm: LoadedLM, logits: Tensor, head_in: Tensor) -> bool:
    head = lm.model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear):
        return False
    ref = torch.nn.functional.linear(
        head_in.float(), head.weight.float(), None if head.bias is None else head.bias.float()
    )
    return bool(torch.allclose(ref, logits, rtol=1e-4, atol=1e-4 * float(logits.abs().max().clamp_min(1.0))))


@torch.inference_mode()
def build_cache(
    lm: LoadedLM,
    layer: int,
    batches: Sequence[EvalBatch],
    outlier_ratio: float = DEFAULT_OUTLIER_RATIO,
    chunk: int = DEFAULT_CHUNK,
) -> EvalCache:
    """One clean forward per batch (residual at the layer, clean CE, ē) and two upper passes with the layer
    zero-ablated (saeflow's positions; SAELens' every real position)."""
    head = lm.model.get_output_embeddings()
    hidden: list[Tensor] = []
    ebars: list[Tensor] = []
    linear = True
    sums = dict.fromkeys(("nll_clean", "nll_zero", "nll_clean_all", "nll_zero_all", "neg_entropy", "pb"), 0.0)
    n = n_all = 0
    for batch in batches:
        got: dict[str, Tensor] = {}

        def keep(_m, _a, out, got=got):
            got["h"] = out[0] if isinstance(out, tuple) else out

        hooks = [
            lm.layers[layer].register_forward_hook(keep),
            head.register_forward_pre_hook(lambda _m, args, got=got: got.__setitem__("head_in", args[0])),
        ]
        try:
            logits = _logits(lm, batch)
        finally:
            for hk in hooks:
                hk.remove()
        h = got["h"].detach()
        hidden.append(h.cpu())
        everything = prediction_mask(batch.attention_mask, skip_first=0)
        ce, ce_all = (next_token_ce(logits, batch.input_ids, m) for m in (batch.predict, everything))
        sums["nll_clean"] += ce.sum_nll
        sums["nll_clean_all"] += ce_all.sum_nll
        n, n_all = n + ce.n, n_all + ce_all.n
        linear = linear and _head_linear(lm, logits, got["head_in"])
        if linear:
            w = head.weight.float()
            b_ = None if head.bias is None else head.bias.float()
            bi, ti = _scored(logits, batch.predict)
            parts = []
            for s in range(0, bi.numel(), chunk):
                lp = torch.log_softmax(logits[bi[s : s + chunk], ti[s : s + chunk]], dim=-1)
                p = lp.exp()
                sums["neg_entropy"] += float(torch.where(p > 0, p * lp, torch.zeros_like(p)).double().sum())
                if b_ is not None:
                    sums["pb"] += float((p.double() @ b_.double()).sum())
                parts.append(p @ w)
            ebars.append(torch.cat(parts).cpu() if parts else torch.zeros(0, w.shape[1]))
        del logits
        # zero ablation: saeflow's positions, then every real position (SAELens)
        zero = h.clone()
        zero[:, 1:][spliced_positions(h, batch.attention_mask, outlier_ratio)] = 0
        zl, _ = run_from_layer(lm, layer, batch.input_ids, batch.attention_mask, zero)
        sums["nll_zero"] += next_token_ce(zl, batch.input_ids, batch.predict).sum_nll
        zero_all = h.clone()
        zero_all[batch.attention_mask.bool().to(h.device)] = 0
        zl, _ = run_from_layer(lm, layer, batch.input_ids, batch.attention_mask, zero_all)
        sums["nll_zero_all"] += next_token_ce(zl, batch.input_ids, everything).sum_nll
    stats = {
        "n_tokens": n,
        "ce_clean": sums["nll_clean"] / n,
        "ce_zero": sums["nll_zero"] / n,
        "n_tokens_saelens": n_all,
        "ce_clean_saelens": sums["nll_clean_all"] / n_all,
        "ce_zero_saelens": sums["nll_zero_all"] / n_all,
    }
    if linear:
        stats.update(sum_neg_entropy=sums["neg_entropy"], sum_pb=sums["pb"])
    return EvalCache(layer, list(batches), hidden, ebars if linear else None, stats)


def _row_nll(logits: Tensor, targets: Tensor, chunk: int) -> tuple[float, Tensor]:
    """Σ NLL over rows of logits [n, V] with targets [n], and lse per row [n] (float64)."""
    nll, lses = 0.0, []
    for s in range(0, logits.shape[0], chunk):
        z = logits[s : s + chunk]
        lse = torch.logsumexp(z, dim=-1)
        nll += float((lse - z.gather(-1, targets[s : s + chunk].unsqueeze(-1)).squeeze(-1)).double().sum())
        lses.append(lse.double())
    return nll, (torch.cat(lses) if lses else torch.zeros(0, dtype=torch.float64))


def _targets(input_ids: Tensor, mask: Tensor) -> Tensor:
    return input_ids[:, 1:][mask.to(input_ids.device).bool()]


@torch.inference_mode()
def evaluate_sae_cached(
    lm: LoadedLM,
    sae: SparseAutoencoder,
    cache: EvalCache,
    outlier_ratio: float = DEFAULT_OUTLIER_RATIO,
    *,
    saelens: bool = True,
    chunk: int = DEFAULT_CHUNK,
) -> EvalResult:
    """:func:`evaluate_sae`'s metrics (same numbers within float tolerance) from the cache: per batch one
    upper pass on the spliced residual (+ one for SAELens' convention with `saelens`), the head only at the
    scored positions; KL from the cached ē (a non-linear head: the clean upper pass is re-run instead)."""
    layer = cache.layer
    linear = cache.ebar is not None
    recon_acc, recon_all = ReconstructionAccumulator(), ReconstructionAccumulator()
    nll_sae = kl_rest = nll_all = 0.0
    n = n_all = n_outliers = 0
    ce_acc = None if linear else CEAccumulator(chunk)
    for i, (batch, h) in enumerate(zip(cache.batches, cache.hidden, strict=True)):
        h = h.to(lm.device)
        ids = batch.input_ids.to(lm.device)
        real = batch.attention_mask.bool().to(h.device)
        f_all, x_hat_all = sae.reconstruct_raw(h[real])
        chosen = spliced_positions(h, batch.attention_mask, outlier_ratio)
        n_outliers += int((real[:, 1:] & ~chosen).sum())
        # rows of h[real] (row-major) that are spliced in saeflow's convention
        pick = torch.zeros_like(real)
        pick[:, 1:] = chosen
        sel = pick[real]
        recon_acc.update(h[real][sel].float(), x_hat_all[sel].float(), f_all[sel])
        spliced = h.clone()
        spliced[:, 1:][chosen] = x_hat_all[sel].to(h.dtype)
        if linear:
            logits, head_in = run_from_layer(
                lm, layer, ids, batch.attention_mask, spliced, rows=_head_rows(batch.predict)
            )
            a, lse = _row_nll(logits, _targets(ids, batch.predict), chunk)
            dot = (cache.ebar[i].to(head_in.device).double() * head_in.double()).sum(-1)
            nll_sae, kl_rest, n = nll_sae + a, kl_rest + float((lse - dot).sum()), n + logits.shape[0]
        else:
            logits, _ = run_from_layer(lm, layer, ids, batch.attention_mask, spliced)
            clean, _ = run_from_layer(lm, layer, ids, batch.attention_mask, h)
            ce_acc.update(clean, logits, ids, batch.predict)
        del logits
        if saelens:
            recon_all.update(h[real].float(), x_hat_all.float(), f_all)
            spliced = h.clone()
            spliced[real] = x_hat_all.to(h.dtype)
            every = prediction_mask(batch.attention_mask, skip_first=0)
            if linear:
                logits, _ = run_from_layer(
                    lm, layer, ids, batch.attention_mask, spliced, rows=_head_rows(every)
                )
                a, _ = _row_nll(logits, _targets(ids, every), chunk)
                nll_all, n_all = nll_all + a, n_all + logits.shape[0]
            else:
                logits, _ = run_from_layer(lm, layer, ids, batch.attention_mask, spliced)
                ce = next_token_ce(logits, ids, every)
                nll_all, n_all = nll_all + ce.sum_nll, n_all + ce.n
            del logits
    st = cache.stats
    if ce_acc is not None:
        lm_metrics = ce_acc.result()
    else:
        ce_sae = nll_sae / n
        kl = (st["sum_neg_entropy"] - st["sum_pb"] + kl_rest) / n
        lm_metrics = LMMetrics(
            n_tokens=n,
            ce_clean=st["ce_clean"],
            ce_sae=ce_sae,
            kl=kl,
            perplexity_clean=perplexity(st["ce_clean"]),
            perplexity_sae=perplexity(ce_sae),
            delta_ce=ce_sae - st["ce_clean"],
        )
    score = ce_loss_score(lm_metrics.ce_clean, lm_metrics.ce_sae, st["ce_zero"])
    extra = None
    if saelens:
        ce_sae_all = nll_all / n_all
        extra = {
            "n_tokens_saelens": n_all,
            "ce_clean_saelens": st["ce_clean_saelens"],
            "ce_sae_saelens": ce_sae_all,
            "ce_zero_saelens": st["ce_zero_saelens"],
            "ce_loss_score_saelens": ce_loss_score(st["ce_clean_saelens"], ce_sae_all, st["ce_zero_saelens"]),
            "explained_variance_saelens": recon_all.result().explained_variance,
        }
    return EvalResult(recon_acc.result(), lm_metrics, st["ce_zero"], score, n_outliers, extra)
