"""Reusable loss pieces that compose with any architecture (docs/methods.md § SAE architectures).

* :func:`orthogonality_penalty` (OrtSAE): chunked max-squared-cosine between decoder rows, O(m·c·d).
* :func:`jump_relu_l0` (JumpReLU and its L0 penalty; also :func:`jump_relu`, :func:`l0_penalty` alone): a
learned
  threshold θ trained by rectangle-kernel straight-through estimators.
* AuxK lives in :mod:`saeflow.sae.topk` (:func:`~saeflow.sae.topk.auxk_loss`); TERM in :mod:`.objectives`.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _NearestCosSquared(torch.autograd.Function):
    """mean_i cos²(w_i, w_p(i)) for each latent's chunk neighbour p(i), found in forward (no autograd through
    the search: the max's gradient flows through its argmax only). The backward is written by hand with every
    normalisation folded into per-latent scalars: a handful of passes over W, O(m·d)."""

    @staticmethod
    def forward(ctx, W: Tensor, perm: Tensor, chunk: int) -> Tensor:
        m, d = W.shape
        n_chunks = -(-m // chunk)
        norms = W.norm(dim=1).clamp_min(1e-8)
        # unit rows first (O(m·d)), so the chunk Gram matrices are the cosines: fewer passes over m·c entries
        Up = W[perm] / norms[perm].unsqueeze(1)
        pad = n_chunks * chunk - m
        if pad:  # zero rows: cosine 0 to everything
            Up = torch.cat([Up, Up.new_zeros(pad, d)])
        Up = Up.view(n_chunks, chunk, d)
        cos = torch.bmm(Up, Up.transpose(1, 2))
        cos.diagonal(dim1=1, dim2=2).zero_()  # j ≠ i
        # the largest |cos| is the max or the min: two read-only passes instead of materialising |cos|
        hi, hi_at = cos.max(dim=-1, keepdim=True)
        lo, lo_at = cos.min(dim=-1, keepdim=True)
        nearest = torch.where(hi >= -lo, hi_at, lo_at)
        cos_p = torch.where(hi >= -lo, hi, lo).reshape(-1)[
            :m
        ]  # signed cosine to the neighbour, permuted order
        pos = (nearest.squeeze(2) + torch.arange(n_chunks, device=W.device).unsqueeze(1) * chunk).reshape(-1)[
            :m
        ]
        del cos, Up
        valid = pos < m  # a padding neighbour: every cosine in the chunk is 0 (cos_p = 0 then)
        partner = torch.empty_like(perm)
        partner[perm] = perm[pos.clamp(max=m - 1)]
        cos_all = torch.empty_like(norms)
        cos_all[perm] = cos_p * valid
        ctx.save_for_backward(W, norms, partner, cos_all)
        return cos_all.square().mean()

    @staticmethod
    def backward(ctx, grad: Tensor):
        W, norms, partner, cos = ctx.saved_tensors
        m = W.shape[0]
        a = (2.0 / m) * grad * cos  # dL/dcos_k
        # dL/dW_k = a_k/(n_k n_p(k)) W_p(k) + Σ_{i: p(i)=k} a_i/(n_k n_i) W_i − proj_k/n_k² W_k,
        # proj_k = a_k cos_k + Σ_{i: p(i)=k} a_i cos_i   (= u_k · dL/du_k)
        ac = a * cos
        proj = ac.index_add(0, partner, ac)
        G = W[partner].mul_((a / (norms * norms[partner])).unsqueeze(1))
        G.index_add_(0, partner, W * (a / (norms * norms[partner])).unsqueeze(1))
        G.addcmul_(W, (proj / norms.square()).unsqueeze(1), value=-1.0)
        return G, None, None


def orthogonality_penalty(W_dec: Tensor, chunk: int, generator: torch.Generator | None = None) -> Tensor:
    """L_orth = mean_i max_{j in chunk(i), j ≠ i} (w_i · w_j)², w = unit decoder rows, random chunks of
    `chunk`.

    Each call draws a random partition of the m latents into ⌈m / chunk⌉ chunks (the last one may be smaller):
    the cost is O(m · chunk · d) — linear in m for a fixed chunk — instead of O(m² · d). With chunk ≥ m it
    is the exact all-pairs value. The chunk Gram matrices are only searched for each latent's nearest
    neighbour j*(i) (no autograd through them); the gradient — the same as differentiating through the max —
    is computed by hand on the m pairs (i, j*(i)) in O(m · d).
    """
    m = W_dec.shape[0]
    if chunk < 2:
        raise ValueError(f"orthogonality chunk must be at least 2; got {chunk}")
    perm = torch.randperm(m, generator=generator, device="cpu" if generator is not None else W_dec.device)
    return _NearestCosSquared.apply(W_dec, perm.to(W_dec.device), min(chunk, m))


def _near(z: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
    """Rectangle kernel K((z − θ)/ε) as a bool mask: |z − θ| < ε/2."""
    return (z - theta).abs_() < bandwidth / 2


class _JumpReLUL0(torch.autograd.Function):
    """f = z·H(z − θ) and the per-token L0 = Σ_i H(z_i − θ_i), with the JumpReLU paper's pseudo-derivatives:
    ∂f/∂z = H(z − θ), ∂f/∂θ = −(θ/ε)·K((z − θ)/ε), ∂H/∂θ = −(1/ε)·K((z − θ)/ε), ∂H/∂z = 0.
    One function for both so the kernel mask is computed once per backward."""

    @staticmethod
    def forward(ctx, z: Tensor, theta: Tensor, bandwidth: float):
        active = z > theta
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return z * active, active.sum(dim=-1, dtype=z.dtype)

    @staticmethod
    def backward(ctx, grad_f: Tensor | None, grad_l0: Tensor | None):
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        near = _near(z, theta, eps)
        grad_z = grad_theta = None
        zero = z.new_zeros(())
        if grad_f is not None:
            grad_z = torch.where(z > theta, grad_f, zero)
            grad_theta = -(theta / eps) * torch.where(near, grad_f, zero).sum(0)
        if grad_l0 is not None:
            g = -(1.0 / eps) * (grad_l0.unsqueeze(0) @ near.to(z.dtype)).squeeze(0)
            grad_theta = g if grad_theta is None else grad_theta + g
        return grad_z, grad_theta, None


class _JumpReLUEntries(torch.autograd.Function):
    """:class:`_JumpReLUL0` entry by entry: z [E] with each entry's own threshold θ [E] gives f [E] and the
    step H(z − θ) [E] (summed per token by the caller), with the same pseudo-derivatives."""

    @staticmethod
    def forward(ctx, z: Tensor, theta: Tensor, bandwidth: float):
        active = z > theta
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return z * active, active.to(z.dtype)

    @staticmethod
    def backward(ctx, grad_f: Tensor | None, grad_h: Tensor | None):
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        near = _near(z, theta, eps)
        zero = z.new_zeros(())
        grad_z = None if grad_f is None else torch.where(z > theta, grad_f, zero)
        grad_theta = torch.zeros_like(theta)
        if grad_f is not None:
            grad_theta -= (theta / eps) * torch.where(near, grad_f, zero)
        if grad_h is not None:
            grad_theta -= torch.where(near, grad_h, zero) / eps
        return grad_z, grad_theta, None


def jump_relu_entries(z: Tensor, theta: Tensor, bandwidth: float) -> tuple[Tensor, Tensor]:
    """(JumpReLU of entries z [E] with their thresholds θ [E], H(z − θ) [E]): :func:`jump_relu_l0` for flat
    sparse codes. Entries below θ − ε/2 contribute nothing (not even to θ's gradient), so codes holding
    every entry above θ − ε/2 give the dense computation's numbers."""
    return _JumpReLUEntries.apply(z, theta, bandwidth)


def jump_relu_l0(z: Tensor, theta: Tensor, bandwidth: float) -> tuple[Tensor, Tensor]:
    """(JumpReLU of z [N, m] with thresholds θ [m], L0 per token [N]); straight-through gradients for θ."""
    return _JumpReLUL0.apply(z, theta, bandwidth)


def jump_relu(z: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
    """JumpReLU of pre-activations z [N, m] with per-latent thresholds θ [m] (straight-through for θ)."""
    return jump_relu_l0(z, theta, bandwidth)[0]


def l0_penalty(z: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
    """[N] number of active latents per token, differentiable in θ (not in z) through the rectangle kernel."""
    return jump_relu_l0(z.detach(), theta, bandwidth)[1]
