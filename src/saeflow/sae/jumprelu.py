"""JumpReLU SAE: f_i = z_i · H(z_i − θ_i) with a learned per-latent threshold θ = exp(log θ).

θ learns through straight-through estimators with a rectangle kernel of bandwidth ε (saeflow.sae.penalties);
sparsity comes from an L0 penalty, which has a gradient only through θ. Settings in `extra`:

* `bandwidth` ε (default 0.001 without a target, 0.02 with one; for inputs scaled to E‖x‖ = √d as the trainer
  does).
* `target_l0`: if set, the sparsity term is the batch-level λ·d·(L0/target − 1)², which steers L0 to the
target
  (how we match L0 across architectures); otherwise the per-token λ·L0 penalty of the JumpReLU paper.
* `l0_coefficient` λ (default 5.0 with a target, 0.001 without).
* `threshold_lr_scale` s (default 30 with a target, 1 without): θ is stored as log θ / s, so Adam moves log θ
  about s times the learning rate per step instead of once.
* `threshold_init`: a number, or "data" (default): on the first training batch each θ_i is set so that latent
i
  fires on a share target/d_sae of the batch (target = target_l0 or k).

What the reference implementations do, and where we differ (measured: tests/sae/test_architectures.py and
docs/studies/architectures.md). dictionary_learning's JumpReluTrainer holds L0 near a target with the same
quadratic penalty on the batch-mean L0, λ = 1, bandwidth 0.001, the penalty's coefficient ramped up linearly
over its first 2,000 steps, and θ trained by the same Adam learning rate as the weights; SAELens' JumpReLU
trainer has no target (a per-token λ·L0 with a linear warm-up of λ) and stores log θ, as we do. Both train for
10⁴–10⁵ steps. Our default run has about 120 steps, and there neither helps: (1) Adam moves log θ by about the
learning rate per step, a few percent over the whole run, while each pre-activation, a sum over d encoder
weights, moves much faster, so L0 followed the encoder's drift (17.5 for a target of 32) with θ frozen;
hence `threshold_lr_scale` (**ours**). (2) With λ = 1 the penalty's pull on θ is ~100× weaker than the
reconstruction error's (summed over d), so even a mobile θ settled far from the target; hence λ is multiplied
by d, as OrtSAE's γ is here, and defaults to 5 (**ours**). (3) With ε = 0.001 a latent's θ gets a gradient
only from the rare tokens within ε/2 of it, so a mobile θ jumps on a few tokens' say and reconstruction
suffered (toy FVU 1.26 against 0.89); ε = 0.02 gives it a gradient most steps (**ours**). A warm-up of λ
would only delay the pull in a run this short, so there is none.

Training takes the flat sparse kernels once θ is initialised and the previous step's L0 is under 5% of the
latents: only the entries above θ − ε/2 (the active ones and those the rectangle kernel reaches) are kept,
which gives the dense computation's losses and gradients (tests/sae/test_architectures.py);
`extra.fast: false` never does.

The threshold is saved as `threshold` ([d_sae], SAELens' JumpReLU layout); latents do not depend on the input
scale, so θ needs no rescaling on save.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from saeflow.errors import ConfigError
from saeflow.sae.base import LossTerms, SAEConfig, SparseAutoencoder, register
from saeflow.sae.kernels import Workspace, flat_decode, relu_encode
from saeflow.sae.penalties import jump_relu, jump_relu_entries, jump_relu_l0
from saeflow.sae.relu import SPARSE_PATH_MAX_DENSITY

DEFAULT_BANDWIDTH = 1e-3  # the JumpReLU paper's, SAELens' and dictionary_learning's
TARGET_BANDWIDTH = 0.02  # with a target_l0 (module docstring)
TARGET_L0_COEFFICIENT = 5.0  # λ of λ·d·(L0/target − 1)² (module docstring)
TARGET_THRESHOLD_LR_SCALE = 30.0


@register
class JumpReLUSAE(SparseAutoencoder):
    name = "jumprelu"
    uses_k = False  # sparsity comes from θ; k only seeds the default target of the data-driven θ init

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        super().__init__(cfg, input_scale=input_scale)
        extra = cfg.extra
        self.target_l0 = extra.get("target_l0")
        targeted = self.target_l0 is not None
        self.bandwidth = float(extra.get("bandwidth", TARGET_BANDWIDTH if targeted else DEFAULT_BANDWIDTH))
        if self.target_l0 is not None and not 0 < float(self.target_l0) <= cfg.d_sae:
            raise ConfigError(f"sae.extra.target_l0 must be in (0, d_sae={cfg.d_sae}]; got {self.target_l0}")
        self.l0_coefficient = float(extra.get("l0_coefficient", TARGET_L0_COEFFICIENT if targeted else 1e-3))
        self.lr_scale = float(extra.get("threshold_lr_scale", TARGET_THRESHOLD_LR_SCALE if targeted else 1.0))
        if self.lr_scale <= 0:
            raise ConfigError(f"sae.extra.threshold_lr_scale must be positive; got {self.lr_scale}")
        init = extra.get("threshold_init", "data")
        if init != "data" and not (isinstance(init, int | float) and init > 0):
            raise ConfigError(f"sae.extra.threshold_init must be 'data' or a positive number; got {init!r}")
        self._init_value = self.bandwidth if init == "data" else float(init)
        log_theta = math.log(self._init_value) / self.lr_scale
        self.scaled_log_threshold = nn.Parameter(torch.full((cfg.d_sae,), log_theta))
        """log θ / s: the parameter Adam trains (s = threshold_lr_scale)."""
        self.register_buffer("threshold_initialised", torch.tensor(init != "data"))
        self.register_buffer("last_l0", torch.tensor(float(cfg.d_sae), dtype=torch.float64))
        """The previous training step's L0: picks the dense or the sparse path (in checkpoints, so a resumed
        run takes the same path as an uninterrupted one)."""
        self.fast = bool(extra.get("fast", True))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        super().reset_parameters(generator)
        if hasattr(self, "scaled_log_threshold"):
            self._set_threshold_(torch.full_like(self.scaled_log_threshold, self._init_value))

    @property
    def threshold(self) -> Tensor:
        return (self.scaled_log_threshold * self.lr_scale).exp()

    @torch.no_grad()
    def _set_threshold_(self, theta: Tensor) -> None:
        theta = theta.to(self.scaled_log_threshold.dtype).clamp_min(torch.finfo(theta.dtype).tiny)
        self.scaled_log_threshold.copy_(theta.log() / self.lr_scale)

    def activation(self, pre: Tensor) -> Tensor:
        return jump_relu(pre, self.threshold, self.bandwidth)

    @torch.no_grad()
    def init_threshold_from_data_(self, pre: Tensor) -> None:
        """θ_i such that latent i fires on about target/d_sae of the tokens of this batch (at least one)."""
        n, m = pre.shape
        target = float(self.target_l0 if self.target_l0 is not None else min(self.cfg.k, m))
        r = min(n - 1, max(1, round(target / m * n)))
        theta = pre.topk(r + 1, dim=0).values[r]  # (r+1)-th largest: r tokens are strictly above
        self._set_threshold_(theta.clamp_min(self.bandwidth))
        self.threshold_initialised.fill_(True)

    def training_loss(self, x: Tensor) -> LossTerms:
        sparse = (
            self.fast
            and bool(self.threshold_initialised)
            and float(self.last_l0) < SPARSE_PATH_MAX_DENSITY * self.cfg.d_sae
        )
        l0, latents, recon = self.sparse_codes(x) if sparse else self.dense_codes(x)
        self.last_l0.copy_(l0.detach().double().mean())
        mse = (recon - x).pow(2).sum(dim=-1)
        if self.target_l0 is not None:
            sparsity = torch.zeros_like(mse)
            aux = self.l0_coefficient * x.shape[1] * (l0.mean() / float(self.target_l0) - 1).pow(2)
        else:
            sparsity = self.l0_coefficient * l0
            aux = x.new_zeros(())
        logs = {
            "mse": mse.mean().item(),
            "sparsity": sparsity.mean().item(),
            "aux": aux.item(),
            "threshold": self.threshold.detach().mean().item(),
        }
        return LossTerms(mse + sparsity, aux, latents, recon, logs)

    def dense_codes(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(L0 [N], latents f [N, m], reconstruction) from the dense pre-activations (θ's data-driven
        initialisation needs them all)."""
        # = pre_acts(x), arranged so that b_dec's gradient is a mat-vec instead of an [N, m] x [m, d] product
        pre = torch.addmm(self.b_enc - self.b_dec @ self.W_enc, x, self.W_enc)
        if not bool(self.threshold_initialised) and pre.shape[0] > 1:
            self.init_threshold_from_data_(pre)
        f, l0 = jump_relu_l0(pre, self.threshold, self.bandwidth)  # L0 [N]: gradient only to θ
        # a full decode: θ's pseudo-derivative needs ∂L/∂f of the inactive latents within ε/2 of it too
        return l0, f, f @ self.W_dec + self.b_dec

    def sparse_codes(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`dense_codes` from flat codes of the entries above θ − ε/2 (every active one and every one
        the rectangle kernel reaches; the others contribute nothing): the same numbers to float rounding,
        latents as a sparse COO [N, m] tensor."""
        if "_workspace" not in self.__dict__:
            self.__dict__["_workspace"] = Workspace()  # plain attribute: never saved, copied or moved
        theta = self.threshold
        floor = (theta - self.bandwidth / 2).detach()
        codes = relu_encode(
            x,
            self.W_enc,
            self.b_enc - floor,
            self.b_dec,
            workspace=self.__dict__["_workspace"],
            select_dtype=self.select_dtype,
        )
        # index_select, not theta[...]: its backward is a deterministic index_add (indexing's is not on CPU)
        z = codes.values + floor.index_select(0, codes.latents)
        f, active = jump_relu_entries(z, theta.index_select(0, codes.latents), self.bandwidth)
        l0 = x.new_zeros(x.shape[0]).index_add(0, codes.rows, active)
        latents = codes._replace(values=f).to_sparse(self.cfg.d_sae)
        return l0, latents, flat_decode(f, codes, self.W_dec) + self.b_dec

    def weights_for_saving(self) -> dict[str, Tensor]:
        return {**super().weights_for_saving(), "threshold": self.threshold.detach().clone().contiguous()}

    def load_saved_weights(self, weights: dict[str, Tensor], input_scale: float) -> None:
        super().load_saved_weights(weights, input_scale)
        if "threshold" in weights:
            self._set_threshold_(weights["threshold"].expand_as(self.scaled_log_threshold))
            self.threshold_initialised.fill_(True)
