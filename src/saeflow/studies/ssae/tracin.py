"""TracIn re-ranking of retrieved documents (Specialized SAEs, § data selection; Pruthi et al. 2020).

A candidate document D scores TracIn(D) = Σ_c η_c ⟨∇θ L(D; θ_c), ∇θ L(S; θ_c)⟩ over the GSAE's snapshots θ_c
(η_c: the mean learning rate since the previous snapshot), with L(D) the mean per-token reconstruction loss
‖x̂ − x‖² of D's tokens (the training loss without AuxK, in the training's input scale) and S the subdomain's
seed documents. θ = (W_enc, b_enc, W_dec, b_dec), every parameter, exactly: no projection is needed because a
TopK token's gradient lives on its k active latents. With z = (x − b_dec) W_enc + b_enc, active set A, f_j =
ReLU(z_j), r = x̂ − x and δ_j = 2⟨r, W_dec,j⟩·[z_j > 0]:

    ∂ℓ/∂W_dec,j = 2 f_j r,   ∂ℓ/∂b_enc,j = δ_j,   ∂ℓ/∂W_enc[:, j] = δ_j (x − b_dec),
    ∂ℓ/∂b_dec = 2r − Σ_j δ_j W_enc[:, j]

so a token's dot product with a fixed (seed) gradient G costs O(k·d):

    Σ_{j∈A} [2 f_j ⟨r, G_Wdec,j⟩ + δ_j (G_benc,j + ⟨x − b_dec, G_Wenc[:, j]⟩ − ⟨W_enc[:, j], G_bdec⟩)]
    + 2⟨r, G_bdec⟩.

The trainer keeps decoder rows at unit norm by removing each row's radial gradient; the seed gradient's
decoder rows are projected the same way, which projects the dot product (the projection is symmetric and
idempotent).
Adam's preconditioning and gradient clipping are left out, as in TracIn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from saeflow.errors import ConfigError, DataError
from saeflow.runtime import file_sha256
from saeflow.sae import SparseAutoencoder, load_sae
from saeflow.sae.kernels import gather_dot, topk_encode
from saeflow.sae.topk import topk_mask_values

ROW_BLOCK = 4096


@dataclass(frozen=True)
class SeedGradient:
    """∇θ of the mean per-token loss of the seed tokens at one snapshot (decoder rows' radial part
    removed)."""

    W_enc: Tensor
    b_enc: Tensor
    W_dec: Tensor
    b_dec: Tensor


def _topk_codes(sae: SparseAutoencoder, x: Tensor) -> tuple[Tensor, Tensor]:
    """(values f [N, k], indices [N, k]) of a TopK SAE on x (input scale), picked in the SAE's select_dtype
    as in its training (bfloat16: the encoder matmul 2× faster), the values exact."""
    codes = topk_encode(x, sae.W_enc, sae.b_enc, sae.b_dec, sae.cfg.k, select_dtype=sae.select_dtype)
    return codes.values, codes.indices


def seed_gradient(sae: SparseAutoencoder, x: Tensor) -> SeedGradient:
    """Autograd gradient of mean_x ‖x̂ − x‖² (x [N, d] in the SAE's input scale), decoder rows projected."""
    params = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]
    with torch.enable_grad():
        recon = topk_mask_values(sae.pre_acts(x), sae.cfg.k) @ sae.W_dec + sae.b_dec
        loss = (recon - x).pow(2).sum(-1).mean()
        g_we, g_be, g_wd, g_bd = torch.autograd.grad(loss, params)
    w = sae.W_dec.detach()
    w = w / w.norm(dim=1, keepdim=True).clamp_min(1e-8)
    g_wd = g_wd - (g_wd * w).sum(dim=1, keepdim=True) * w
    return SeedGradient(g_we.detach(), g_be.detach(), g_wd.detach(), g_bd.detach())


@torch.no_grad()
def token_dots(sae: SparseAutoencoder, x: Tensor, grad: SeedGradient) -> Tensor:
    """⟨∇θ ℓ(x_n), G⟩ for every row x_n of x [N, d] (input scale): [N], by the closed form above."""
    out = torch.empty(x.shape[0], dtype=x.dtype)
    enc_dot_bdec = sae.W_enc.t() @ grad.b_dec  # ⟨W_enc[:, j], G_bdec⟩ for every j
    g_we_t = grad.W_enc.t().contiguous()
    for s in range(0, x.shape[0], ROW_BLOCK):
        xb = x[s : s + ROW_BLOCK]
        f, idx = _topk_codes(sae, xb)
        r = torch.nn.functional.embedding_bag(idx, sae.W_dec, mode="sum", per_sample_weights=f)
        r = r + sae.b_dec - xb
        xc = xb - sae.b_dec
        delta = 2 * gather_dot(idx, sae.W_dec, r) * (f > 0).to(x.dtype)
        dec = 2 * f * gather_dot(idx, grad.W_dec, r)
        enc = delta * (grad.b_enc[idx] + gather_dot(idx, g_we_t, xc) - enc_dot_bdec[idx])
        out[s : s + ROW_BLOCK] = (dec + enc).sum(-1) + 2 * (r @ grad.b_dec)
    return out


def document_means(values: Tensor, doc_index: Tensor, n_docs: int) -> Tensor:
    """Mean of per-row values per document ([n_docs]; NaN for a document with no rows)."""
    sums = torch.zeros(n_docs, dtype=torch.float64).index_add_(0, doc_index, values.double())
    counts = torch.bincount(doc_index, minlength=n_docs).double()
    return sums / counts


@dataclass(frozen=True)
class Snapshot:
    step: int
    lr: float
    """η: the mean learning rate of the steps since the previous snapshot."""
    path: Path


def read_snapshots(sae_dir: str | Path) -> list[Snapshot]:
    """The snapshots an SAE's metrics.json lists, each file checked against its recorded sha256."""
    sae_dir = Path(sae_dir)
    metrics_path = sae_dir / "metrics.json"
    try:
        entries = json.loads(metrics_path.read_text()).get("snapshots") or []
    except (OSError, ValueError) as err:
        raise DataError(f"{metrics_path}: not readable ({err})") from None
    if not entries:
        raise ConfigError(
            f"{metrics_path}: the SAE kept no snapshots; TracIn needs them (set `snapshots` in its spec, "
            "e.g. saes.gsae.snapshots: 4)"
        )
    out = []
    for e in entries:
        path = sae_dir / e["file"]
        if not path.is_file() or file_sha256(path) != e["sha256"]:
            raise DataError(f"{path}: missing or not the snapshot {metrics_path} lists; retrain the SAE")
        out.append(Snapshot(int(e["step"]), float(e["lr"]), path))
    return out


def snapshot_sae(sae_dir: str | Path, snapshot: Snapshot) -> SparseAutoencoder:
    """The SAE at a snapshot, in its training input scale (so the losses are the trained ones)."""
    sae = load_sae(sae_dir)
    if sae.cfg.architecture != "topk":
        raise ConfigError(
            f"{sae_dir}: TracIn's closed-form gradients are for TopK SAEs; got {sae.cfg.architecture}"
        )
    scale = json.loads((Path(sae_dir) / "cfg.json").read_text())["saeflow"]["input_scale"]
    sae.load_saved_weights(load_file(str(snapshot.path)), input_scale=scale)
    return sae.eval()


@dataclass(frozen=True)
class TracInScores:
    scores: np.ndarray
    """[n_docs] Σ_c η_c ⟨∇L(D), ∇L(S)⟩."""
    per_snapshot: np.ndarray
    """[n_snapshots, n_docs] the unweighted dot products."""
    lrs: list[float]


def tracin_scores(
    sae_dir: str | Path,
    snapshots: Sequence[Snapshot],
    candidates: Tensor,
    doc_index: Tensor,
    n_docs: int,
    seeds: Tensor,
) -> TracInScores:
    """TracIn of every candidate document (rows `candidates` [N, d], raw activations, `doc_index` [N]) toward
    the seed rows [M, d] (raw), summed over the snapshots."""
    per = []
    for snap in snapshots:
        sae = snapshot_sae(sae_dir, snap)
        grad = seed_gradient(sae, seeds.float() * sae.input_scale)
        dots = token_dots(sae, candidates.float() * sae.input_scale, grad)
        per.append(document_means(dots, doc_index, n_docs).numpy())
    per_snapshot = np.stack(per)
    lrs = [s.lr for s in snapshots]
    return TracInScores(np.asarray(lrs) @ per_snapshot, per_snapshot, lrs)
