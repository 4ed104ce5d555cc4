"""Sparse kernels for TopK-style SAEs: training touches only the k active latents of each token.

A TopK SAE step done densely costs five [N, d] x [d, m] matmuls (encoder forward, decoder forward, the
decoder's two gradients and the encoder's weight gradient) plus several dense [N, m] temporaries. Only the
encoder's forward matmul is inherently dense (every pre-activation is needed to pick the top k); everything
after it involves N·k of the N·m latents. These kernels do exactly that work:

* :func:`topk_encode` computes the pre-activations block by block (no [N, m] tensor lives beyond one block),
  keeps the top k (and, for AuxK, the top k_aux among dead latents) and returns [N, k] values and indices.
  Its backward needs only the [N, k] gradient of the selected values.
* :func:`sparse_decode` is x̂ = Σ_j v_j · W_dec[i_j] as an ``embedding_bag`` gather of k rows per token.
* :func:`scatter_rows` (out[l] = Σ_{i_{nj} = l} w_nj · src_n, the weight gradient of both) sorts the N·k
  latent ids once and runs it as an ``embedding_bag`` *over tokens*, one bag per latent: a gather, no atomics,
  deterministic (a stable sort fixes the summation order).

All are plain PyTorch ops (CPU and CUDA); the gradients match the dense computation to float rounding
(tests/test_sae_fast.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ENCODE_BLOCK_ROWS = 4096
"""Rows per block of the encoder matmul + top-k: bounds the [block, m] pre-activations for large batches
(smaller blocks cost matmul efficiency on CPU: 1024-row blocks are ~10% slower than 4096 at d_sae = 4608)."""


class Workspace:
    """A reusable scratch buffer. Allocating the [block, m] pre-activations afresh every step costs ~10% of a
    CPU step: buffers this large are mmap'ed and page-faulted in on each use; reusing one keeps it mapped."""

    def __init__(self) -> None:
        self._buf: Tensor | None = None

    def get(self, rows: int, cols: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        buf = self._buf
        stale = buf is None or buf.dtype != dtype or buf.device != device or buf.shape[1] != cols
        if stale or len(buf) < rows:
            buf = self._buf = torch.empty(rows, cols, dtype=dtype, device=device)
        return buf[:rows]


class TopKCodes(NamedTuple):
    """Sparse latent codes of a batch: the selected latents of each token and their (ReLU'd) values."""

    values: Tensor
    """[N, k] activations (ReLU of the selected pre-activations; differentiable)."""
    indices: Tensor
    """[N, k] latent ids (int64)."""
    aux_values: Tensor | None = None
    """[N, k_aux] activations of the top-k_aux dead latents (AuxK), or None."""
    aux_indices: Tensor | None = None


def to_sparse_latents(values: Tensor, indices: Tensor, d_sae: int) -> Tensor:
    """[N, k] codes as a sparse COO [N, d_sae] tensor (for metrics; no dense [N, m] is built)."""
    n, k = indices.shape
    rows = torch.arange(n, device=indices.device).repeat_interleave(k)
    coords = torch.stack([rows, indices.reshape(-1)])
    return torch.sparse_coo_tensor(coords, values.reshape(-1), (n, d_sae), check_invariants=False)


def coalesce_latents(latents: Tensor) -> Tensor:
    """Coalesce a sparse COO [N, m] latent tensor with unique (row, col) pairs (e.g. from
    :func:`to_sparse_latents`) by a stable argsort of row·m + col; dense or coalesced input is returned as is.
    (torch's own coalesce sorts with its parallel sort, which is slow on a busy 2-core CPU.)"""
    if not latents.is_sparse or latents.is_coalesced():
        return latents
    idx, vals = latents._indices(), latents._values()
    key = idx[0] * latents.shape[1] + idx[1]
    perm = _stable_argsort(key, latents.shape[0] * latents.shape[1]).to(key.device)
    return torch.sparse_coo_tensor(
        idx[:, perm], vals[perm], latents.shape, is_coalesced=True, check_invariants=False
    )


# --------------------------------------------------------------------------------------------------
# scatter of weighted rows, as a gather
# --------------------------------------------------------------------------------------------------


def _stable_argsort(flat: Tensor, n_rows: int) -> Tensor:
    """Stable argsort of latent ids. On CPU numpy's radix sort (16-bit ids) is ~100x faster than torch's
    parallel sort on a busy 2-core machine; elsewhere torch's own."""
    if flat.device.type != "cpu":
        return torch.argsort(flat, stable=True)
    if n_rows <= np.iinfo(np.uint16).max + 1:
        keys = flat.numpy().astype(np.uint16)
    elif n_rows <= np.iinfo(np.int32).max:
        keys = flat.numpy().astype(np.int32)
    else:
        keys = flat.numpy()
    return torch.from_numpy(np.argsort(keys, kind="stable"))


def _offsets_of(ids: Tensor, n: int) -> Tensor:
    """[n] start of each id's run in `ids` sorted ascending (embedding_bag offsets; empty runs repeat)."""
    offsets = torch.zeros(n, dtype=torch.long, device=ids.device)
    torch.cumsum(torch.bincount(ids, minlength=n)[:-1], 0, out=offsets[1:])
    return offsets


def scatter_rows(indices: Tensor, weights: Tensor, src: Tensor, n_rows: int) -> Tensor:
    """out[l] = Σ_{(n, j): indices[n, j] = l} weights[n, j] · src[n]; out is [n_rows, d].

    indices, weights: [N, k]; src: [N, d]. This is Sᵀ·src for the sparse [N, n_rows] matrix S with k entries
    per row, i.e. the weight gradient of an embedding_bag: :func:`flat_scatter_rows` with k entries per token.
    """
    n, k = indices.shape
    rows = torch.arange(n, device=indices.device).repeat_interleave(k)
    return flat_scatter_rows(indices.reshape(-1), rows, weights.reshape(-1), src, n_rows)


def gather_dot(indices: Tensor, table: Tensor, rows: Tensor) -> Tensor:
    """out[n, j] = ⟨rows[n], table[indices[n, j]]⟩ ([N, k]): the per-value gradient of an embedding_bag."""
    n, k = indices.shape
    flat = indices.reshape(-1)
    offsets = torch.arange(0, n * k, k, device=flat.device)
    offset2bag = torch.arange(n, device=flat.device).repeat_interleave(k)
    try:  # the kernel embedding_bag's own backward uses (no [N, k, d] temporary)
        out = torch.ops.aten._embedding_bag_per_sample_weights_backward(
            rows, table, flat, offsets, offset2bag, 0, -1
        )
        return out.reshape(n, k)
    except (RuntimeError, AttributeError):  # pragma: no cover - other torch builds
        out = torch.empty(n, k, dtype=rows.dtype, device=rows.device)
        for s in range(0, n, 256):
            block = table[indices[s : s + 256]]
            out[s : s + 256] = torch.bmm(block, rows[s : s + 256].unsqueeze(-1)).squeeze(-1)
        return out


# --------------------------------------------------------------------------------------------------
# decoder
# --------------------------------------------------------------------------------------------------


class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: Tensor, indices: Tensor, W_dec: Tensor) -> Tensor:
        ctx.save_for_backward(values, indices, W_dec)
        return F.embedding_bag(indices, W_dec, mode="sum", per_sample_weights=values.to(W_dec.dtype))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        values, indices, W_dec = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_values = grad_W = None
        if ctx.needs_input_grad[0]:
            grad_values = gather_dot(indices, W_dec, grad_out).to(values.dtype)
        if ctx.needs_input_grad[2]:
            grad_W = scatter_rows(indices, values, grad_out, W_dec.shape[0])
        return grad_values, None, grad_W


def sparse_decode(values: Tensor, indices: Tensor, W_dec: Tensor) -> Tensor:
    """Σ_j values[n, j] · W_dec[indices[n, j]] ([N, d], no bias): the decoder applied to [N, k] codes."""
    return _SparseDecode.apply(values, indices, W_dec)


# --------------------------------------------------------------------------------------------------
# encoder + top-k
# --------------------------------------------------------------------------------------------------


class _TopKEncode(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        x,
        W_enc,
        b_enc,
        b_dec,
        k: int,
        dead: Tensor | None,
        k_aux: int,
        block: int,
        workspace: Workspace | None,
        select_dtype: torch.dtype | None,
    ):
        n = x.shape[0]
        xc = x - b_dec
        low, (sel_x, sel_W, sel_b) = _selection_operands(select_dtype, xc, W_enc, b_enc)
        scratch = (workspace or Workspace()).get(min(block, n), W_enc.shape[1], sel_x.dtype, xc.device)
        values = torch.empty(n, k, dtype=sel_x.dtype, device=x.device)
        indices = torch.empty(n, k, dtype=torch.long, device=x.device)
        use_aux = dead is not None and k_aux > 0
        if use_aux:
            aux_values = torch.empty(n, k_aux, dtype=sel_x.dtype, device=x.device)
            aux_indices = torch.empty(n, k_aux, dtype=torch.long, device=x.device)
            dead_ids = dead.nonzero().squeeze(1)
        for s in range(0, n, block):
            e = min(s + block, n)
            pre = torch.addmm(sel_b, sel_x[s:e], sel_W, out=scratch[: e - s])
            torch.topk(pre, k, dim=-1, sorted=False, out=(values[s:e], indices[s:e]))
            if use_aux:
                aux_values[s:e], aux_indices[s:e] = dead_topk(pre, dead_ids, k_aux)
            del pre
        if low:  # the selection came from low-precision pre-activations; the values are exact
            W_t = W_enc.t().contiguous()
            values = exact_pre_acts(indices, W_t, b_enc, xc)
            if use_aux:
                aux_values = exact_pre_acts(aux_indices, W_t, b_enc, xc)
        values.relu_()
        ctx.mark_non_differentiable(indices)
        if use_aux:
            aux_values.relu_()
            ctx.mark_non_differentiable(aux_indices)
            ctx.save_for_backward(xc, W_enc, values, indices, aux_values, aux_indices)
            return values, indices, aux_values, aux_indices
        ctx.save_for_backward(xc, W_enc, values, indices)
        return values, indices, None, None

    @staticmethod
    def backward(ctx, grad_values, _gi, grad_aux_values=None, _gai=None):
        xc, W_enc, values, indices, *aux = ctx.saved_tensors
        m = W_enc.shape[1]
        if grad_values is None:
            grad_values = torch.zeros_like(values)
        g = grad_values * (values > 0)  # ReLU after the top-k
        idx = indices
        if aux:
            aux_values, aux_indices = aux
            if grad_aux_values is not None:
                g = torch.cat([g, grad_aux_values * (aux_values > 0)], dim=1)
                idx = torch.cat([indices, aux_indices], dim=1)
        g = g.contiguous()
        grad_x = grad_W = grad_b_enc = grad_b_dec = None
        need_x, need_W, need_b_enc, need_b_dec = ctx.needs_input_grad[:4]
        if need_b_enc or need_b_dec:
            grad_pre_sum = g.new_zeros(m).index_add_(0, idx.reshape(-1), g.reshape(-1))
            grad_b_enc = grad_pre_sum if need_b_enc else None
            if need_b_dec:  # pre = (x − b_dec) W_enc + b_enc
                grad_b_dec = -(W_enc @ grad_pre_sum)
        if need_W:
            grad_W = scatter_rows(idx, g, xc, m).t()
        if need_x:
            grad_x = gather_rows_sum(idx, g, W_enc)
        return grad_x, grad_W, grad_b_enc, grad_b_dec, None, None, None, None, None, None


def dead_topk(pre: Tensor, dead_ids: Tensor, k_aux: int) -> tuple[Tensor, Tensor]:
    """(values, latent ids) [N, k_aux] of the k_aux largest entries of pre [N, m] in the columns `dead_ids`
    (k_aux ≤ their number): a top-k over the dead columns only (all of them when k_aux is their number)."""
    if k_aux >= len(dead_ids):
        return pre[:, dead_ids], dead_ids.expand(pre.shape[0], -1)
    values, j = pre.index_select(1, dead_ids).topk(k_aux, dim=-1, sorted=False)
    return values, dead_ids[j]


def _selection_operands(
    select_dtype: torch.dtype | None, xc: Tensor, W_enc: Tensor, b_enc: Tensor
) -> tuple[bool, tuple[Tensor, Tensor, Tensor]]:
    """(low, operands of the selection matmul): cast to `select_dtype` when it differs from the inputs' dtype
    (low = True: the selected pre-activations must be recomputed exactly), else the inputs themselves."""
    low = select_dtype is not None and select_dtype != xc.dtype
    operands = tuple(t.detach().to(select_dtype) for t in (xc, W_enc, b_enc)) if low else (xc, W_enc, b_enc)
    return low, operands


def exact_pre_acts(indices: Tensor, W_t: Tensor, b_enc: Tensor, xc: Tensor) -> Tensor:
    """pre[n, j] = ⟨xc[n], W_t[indices[n, j]]⟩ + b_enc[indices[n, j]] ([N, k]) in the inputs' precision: the
    pre-activations of selected latents only (W_t = W_encᵀ, contiguous)."""
    return gather_dot(indices, W_t, xc) + b_enc[indices]


def gather_rows_sum(indices: Tensor, weights: Tensor, W_enc: Tensor) -> Tensor:
    """Σ_j weights[n, j] · W_enc[:, indices[n, j]] ([N, d]): the input gradient of the sparse encoder."""
    return F.embedding_bag(indices, W_enc.t().contiguous(), mode="sum", per_sample_weights=weights)


def topk_encode(
    x: Tensor,
    W_enc: Tensor,
    b_enc: Tensor,
    b_dec: Tensor,
    k: int,
    *,
    dead: Tensor | None = None,
    k_aux: int = 0,
    block: int = ENCODE_BLOCK_ROWS,
    workspace: Workspace | None = None,
    select_dtype: torch.dtype | None = None,
) -> TopKCodes:
    """TopK codes of ReLU(topk((x − b_dec) W_enc + b_enc)), differentiable in x, W_enc, b_enc and b_dec.

    With a boolean [m] `dead` mask and k_aux > 0 (at most the number of dead latents), also the top-k_aux
    pre-activations among the dead latents (AuxK), from the same matmul. Backward costs O(N·(k + k_aux)·d).
    Pass the same `workspace` on every call to reuse the pre-activation buffer. With a `select_dtype` below
    the inputs' (bfloat16), the encoder matmul runs in it and only picks the latents: their values (and every
    gradient) are computed in the inputs' precision, O(N·k·d) (near-ties may pick another latent).
    """
    if dead is None or k_aux <= 0:
        dead, k_aux = None, 0
    values, indices, aux_values, aux_indices = _TopKEncode.apply(
        x, W_enc, b_enc, b_dec, int(k), dead, int(k_aux), int(block), workspace, select_dtype
    )
    return TopKCodes(values, indices, aux_values, aux_indices)


# --------------------------------------------------------------------------------------------------
# flat codes: a variable number of active latents per token (BatchTopK family)
# --------------------------------------------------------------------------------------------------


class FlatCodes(NamedTuple):
    """Sparse codes with a variable number of active latents per token, as E flat entries sorted by token
    (then latent): entry e is latent `latents[e]` of token `rows[e]` with value `values[e]`."""

    values: Tensor
    """[E] activations (differentiable)."""
    rows: Tensor
    """[E] int64 token of each entry, ascending."""
    latents: Tensor
    """[E] int64 latent of each entry."""
    offsets: Tensor
    """[N] int64 first entry of each token (embedding_bag's offsets)."""
    aux_values: Tensor | None = None
    """[N, k_aux] activations of the top-k_aux dead latents of each token (AuxK), or None."""
    aux_indices: Tensor | None = None

    def to_sparse(self, d_sae: int) -> Tensor:
        """The codes (detached) as a coalesced sparse COO [N, d_sae] tensor."""
        coords = torch.stack([self.rows, self.latents])
        return torch.sparse_coo_tensor(
            coords,
            self.values.detach(),
            (len(self.offsets), d_sae),
            is_coalesced=True,
            check_invariants=False,
        )


def flat_scatter_rows(latents: Tensor, rows: Tensor, weights: Tensor, src: Tensor, n_out: int) -> Tensor:
    """out[l] = Σ_{e: latents[e] = l} weights[e] · src[rows[e]] ([n_out, d]): :func:`scatter_rows` for flat
    entries, as an embedding_bag over the rows of `src` with one bag per output row."""
    perm = _stable_argsort(latents, n_out).to(latents.device)
    return F.embedding_bag(
        rows[perm],
        src,
        _offsets_of(latents, n_out),
        mode="sum",
        per_sample_weights=weights[perm].to(src.dtype),
    )


def flat_gather_dot(latents: Tensor, rows: Tensor, offsets: Tensor, table: Tensor, src: Tensor) -> Tensor:
    """out[e] = ⟨src[rows[e]], table[latents[e]]⟩ ([E]): the per-value gradient of a flat embedding_bag."""
    try:
        return torch.ops.aten._embedding_bag_per_sample_weights_backward(
            src.contiguous(), table, latents, offsets, rows, 0, -1
        )
    except (RuntimeError, AttributeError):  # pragma: no cover - other torch builds
        out = torch.empty(len(latents), dtype=src.dtype, device=src.device)
        for s in range(0, len(latents), 8192):
            out[s : s + 8192] = (src[rows[s : s + 8192]] * table[latents[s : s + 8192]]).sum(-1)
        return out


class _FlatDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: Tensor, latents: Tensor, rows: Tensor, offsets: Tensor, W_dec: Tensor) -> Tensor:
        ctx.save_for_backward(values, latents, rows, offsets, W_dec)
        return F.embedding_bag(latents, W_dec, offsets, mode="sum", per_sample_weights=values.to(W_dec.dtype))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        values, latents, rows, offsets, W_dec = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_values = grad_W = None
        if ctx.needs_input_grad[0]:
            grad_values = flat_gather_dot(latents, rows, offsets, W_dec, grad_out).to(values.dtype)
        if ctx.needs_input_grad[4]:
            grad_W = flat_scatter_rows(latents, rows, values, grad_out, W_dec.shape[0])
        return grad_values, None, None, None, grad_W


def flat_decode(values: Tensor, codes: FlatCodes, W_dec: Tensor) -> Tensor:
    """Σ_e values[e] · W_dec[latents[e]] per token ([N, d], no bias), for the entries of `codes` (`values`
    replaces codes.values, e.g. masked to a Matryoshka prefix)."""
    return _FlatDecode.apply(values, codes.latents, codes.rows, codes.offsets, W_dec)


def block_flat_decode(codes: FlatCodes, W_dec: Tensor, block_ends: Sequence[int]) -> Tensor:
    """[N, B, d]: per token, Σ_e values[e] · W_dec[latents[e]] over its entries in each latent block
    [block_ends[b − 1], block_ends[b]) (the last block ends at the last latent), in one sparse pass.

    The entries are sorted by token, then latent, so bagging them by (token, block) keeps the bags contiguous
    and in order: one embedding_bag forward, and one sparse backward whose per-bag gradients are the blocks'.
    """
    n_tokens, n_blocks = len(codes.offsets), len(block_ends)
    bounds = torch.tensor(list(block_ends[:-1]), dtype=codes.latents.dtype, device=codes.latents.device)
    bags = codes.rows * n_blocks + torch.bucketize(codes.latents, bounds, right=True)
    offsets = _offsets_of(bags, n_tokens * n_blocks)
    parts = _FlatDecode.apply(codes.values, codes.latents, bags, offsets, W_dec)
    return parts.view(n_tokens, n_blocks, -1)


DENSE_CODES_MAX_DENSITY = 0.05
"""Above this share of non-zero codes, :func:`decode_dense_codes` takes the dense matmul."""


def decode_dense_codes(latents: Tensor, W_dec: Tensor) -> Tensor:
    """latents @ W_dec ([N, m] @ [m, d], no bias) for codes given densely. Without autograd, and when at
    most 5% of the codes are non-zero (a trained SAE at inference), as a gather of the active decoder rows
    (one ``embedding_bag`` over the non-zero entries): 5× faster than the matmul at m 4,608, L0 32 on CPU,
    the same sum to float rounding (the order of the additions differs)."""
    needs_grad = torch.is_grad_enabled() and (latents.requires_grad or W_dec.requires_grad)
    if needs_grad or latents.dim() != 2 or latents.is_sparse or latents.dtype != W_dec.dtype:
        return latents @ W_dec
    n_active = int(torch.count_nonzero(latents))
    if n_active > DENSE_CODES_MAX_DENSITY * latents.numel():
        return latents @ W_dec
    rows, cols = latents.nonzero(as_tuple=True)  # row-major: bags are contiguous, in token order
    offsets = _offsets_of(rows, latents.shape[0])
    return F.embedding_bag(cols, W_dec, offsets, mode="sum", per_sample_weights=latents[rows, cols])


SAMPLE_STRIDE = 16
"""The batch threshold's first guess reads every 16th latent of every token."""

SAMPLE_MARGIN = 1.25
"""The guess aims at 1.25× the kept entries (a quantile of 1/16 of the entries is within a few % of the
batch's; the count check below makes any miss safe)."""


def _threshold_guess(pre: Tensor, n_keep: int) -> float | None:
    """A value of pre [N, m] that about SAMPLE_MARGIN·n_keep entries reach, from the quantile of a strided
    sample of the latents (a guess: the caller counts), or None when the sample is too small to say."""
    sample = pre[:, ::SAMPLE_STRIDE].reshape(-1)
    want = math.ceil(SAMPLE_MARGIN * n_keep * sample.numel() / pre.numel())
    if want >= sample.numel():
        return None
    return float(sample.topk(want, sorted=False).values.min())


def _entries_at_least(pre: Tensor, tau: float) -> tuple[Tensor, Tensor, Tensor]:
    """(values, rows, latents) of the entries of pre ≥ τ (> 0 at τ = 0: ReLU keeps no zeros)."""
    rows, latents = (pre > 0 if tau == 0.0 else pre >= tau).nonzero(as_tuple=True)
    return pre[rows, latents], rows, latents


def _batch_topk_entries(pre: Tensor, k: int, candidates: int) -> tuple[Tensor, Tensor, Tensor]:
    """(values, rows, latents) of the k·N largest positive entries of pre [N, m] (unordered), exactly.

    Any τ that at least k·N entries reach bounds the k·N-th largest from below, so the kept entries are the
    k·N largest of those ≥ τ. First τ is guessed from a sample (:func:`_threshold_guess`, one cheap top-k) and
    checked by counting; if too few entries reach it, each token's top c = candidates·k entries give a bound
    that always holds (the k·N-th largest of any N·c entries is at most that of all of them)."""
    n, m = pre.shape
    n_keep = min(k * n, n * m)
    found = None
    guess = _threshold_guess(pre, n_keep)
    if guess is not None:
        tau = max(guess, 0.0)
        found = _entries_at_least(pre, tau)
        if tau > 0.0 and len(found[0]) < n_keep:
            found = None  # the guess was too high: fall back to the bound that always holds
    if found is None:
        c = min(m, max(k, candidates * k))
        if c < m:
            cand = pre.topk(c, dim=1, sorted=False).values.reshape(-1)
            tau = max(float(cand.kthvalue(len(cand) - n_keep + 1).values), 0.0)
        else:
            tau = 0.0
        found = _entries_at_least(pre, tau)
    values, rows, latents = found
    if len(values) > n_keep:
        top = values.topk(n_keep, sorted=False).indices
        values, rows, latents = values[top], rows[top], latents[top]
    return values, rows, latents


def _positive_entries(pre: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(values, rows, latents) of every positive entry of pre [N, m] (ReLU codes)."""
    rows, latents = (pre > 0).nonzero(as_tuple=True)
    return pre[rows, latents], rows, latents


class _FlatEncode(torch.autograd.Function):
    """Encoder matmul, a selection of its entries (BatchTopK with k > 0, else every positive one: ReLU), flat
    codes; the backward touches only the selected entries."""

    @staticmethod
    def forward(
        ctx, x, W_enc, b_enc, centre, k: int, candidates: int, dead, k_aux: int, workspace, select_dtype
    ):
        n, m = x.shape[0], W_enc.shape[1]
        xc = x - centre
        low, (sel_x, sel_W, sel_b) = _selection_operands(select_dtype, xc, W_enc, b_enc)
        scratch = (workspace or Workspace()).get(n, m, sel_x.dtype, xc.device)
        pre = torch.addmm(sel_b, sel_x, sel_W, out=scratch)
        values, rows, latents = _batch_topk_entries(pre, k, candidates) if k > 0 else _positive_entries(pre)
        order = _stable_argsort(rows * m + latents, n * m).to(rows.device)
        values, rows, latents = (
            values[order].contiguous(),
            rows[order].contiguous(),
            latents[order].contiguous(),
        )
        if low:  # the selection came from low-precision pre-activations; the values are exact
            W_t = W_enc.t().contiguous()
            values = flat_gather_dot(latents, rows, _offsets_of(rows, n), W_t, xc) + b_enc[latents]
            positive = values > 0
            if not bool(positive.all()):
                values, rows, latents = values[positive], rows[positive], latents[positive]
        offsets = _offsets_of(rows, n)
        ctx.mark_non_differentiable(rows, latents, offsets)
        use_aux = dead is not None and k_aux > 0
        if use_aux:
            aux_values, aux_indices = dead_topk(pre, dead.nonzero().squeeze(1), k_aux)
            if low:
                aux_values = exact_pre_acts(aux_indices, W_t, b_enc, xc)
            aux_values = aux_values.relu()
            ctx.mark_non_differentiable(aux_indices)
            ctx.save_for_backward(xc, W_enc, values, rows, latents, aux_values, aux_indices)
            return values, rows, latents, offsets, aux_values, aux_indices
        ctx.save_for_backward(xc, W_enc, values, rows, latents)
        return values, rows, latents, offsets, None, None

    @staticmethod
    def backward(ctx, grad_values, _r, _l, _o, grad_aux_values=None, _ai=None):
        xc, W_enc, values, rows, latents, *aux = ctx.saved_tensors
        m = W_enc.shape[1]
        g = grad_values if grad_values is not None else torch.zeros_like(values)
        grad_W = flat_scatter_rows(latents, rows, g, xc, m)
        grad_pre_sum = g.new_zeros(m).index_add_(0, latents, g)
        if aux and grad_aux_values is not None:
            aux_values, aux_indices = aux
            ga = (grad_aux_values * (aux_values > 0)).contiguous()
            grad_W = grad_W + scatter_rows(aux_indices, ga, xc, m)
            grad_pre_sum.index_add_(0, aux_indices.reshape(-1), ga.reshape(-1))
        need_x, need_W, need_b_enc, need_centre = ctx.needs_input_grad[:4]
        grad_x = None
        if need_x:
            grad_x = F.embedding_bag(
                latents,
                W_enc.t().contiguous(),
                _offsets_of(rows, xc.shape[0]),
                mode="sum",
                per_sample_weights=g,
            )
            if aux and grad_aux_values is not None:
                grad_x = grad_x + gather_rows_sum(aux_indices, ga, W_enc)
        return (
            grad_x,
            grad_W.t() if need_W else None,
            grad_pre_sum if need_b_enc else None,
            -(W_enc @ grad_pre_sum) if need_centre else None,  # pre = (x − centre) W_enc + b_enc
            None,
            None,
            None,
            None,
            None,
            None,
        )


def batch_topk_encode(
    x: Tensor,
    W_enc: Tensor,
    b_enc: Tensor,
    centre: Tensor,
    k: int,
    *,
    dead: Tensor | None = None,
    k_aux: int = 0,
    workspace: Workspace | None = None,
    candidates: int = 2,
    select_dtype: torch.dtype | None = None,
) -> FlatCodes:
    """BatchTopK codes of ReLU((x − centre) W_enc + b_enc): the k·N largest entries of the batch (positive
    ones), exactly, as flat entries; differentiable in x, W_enc, b_enc and centre. One encoder matmul; each
    token's top `candidates`·k pre-activations bound the batch's threshold from below, one pass collects the
    entries above the bound (:func:`_batch_topk_entries`). The backward touches only the kept entries (and
    the AuxK codes of the dead latents, per token as in :func:`topk_encode`). `select_dtype`: as in
    :func:`topk_encode` (an entry whose exact value is not positive is dropped)."""
    if dead is None or k_aux <= 0:
        dead, k_aux = None, 0
    values, rows, latents, offsets, aux_values, aux_indices = _FlatEncode.apply(
        x, W_enc, b_enc, centre, int(k), int(candidates), dead, int(k_aux), workspace, select_dtype
    )
    return FlatCodes(values, rows, latents, offsets, aux_values, aux_indices)


def relu_encode(
    x: Tensor,
    W_enc: Tensor,
    b_enc: Tensor,
    centre: Tensor,
    *,
    workspace: Workspace | None = None,
    select_dtype: torch.dtype | None = None,
) -> FlatCodes:
    """ReLU((x − centre) W_enc + b_enc) as flat codes of its positive entries; differentiable like
    :func:`batch_topk_encode` (worth it once the codes are sparse: one dense matmul, the rest O(nnz·d)).
    `select_dtype`: as in :func:`batch_topk_encode`."""
    values, rows, latents, offsets, _, _ = _FlatEncode.apply(
        x, W_enc, b_enc, centre, 0, 0, None, 0, workspace, select_dtype
    )
    return FlatCodes(values, rows, latents, offsets)
