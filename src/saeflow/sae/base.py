"""Shared SAE machinery: config, parameters, encode/decode, decoder-norm handling, save/load.

Weights are stored as `sae_weights.safetensors` (W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec, plus
architecture extras such as `threshold`) next to `cfg.json`, the layout SAELens' `SAE.load_from_disk` reads.
Saved weights always act on raw (unscaled) activations: the training-time input scale is folded in on save.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from saeflow.errors import ConfigError, DataError
from saeflow.io import atomic_path
from saeflow.sae.kernels import decode_dense_codes

ARCHITECTURES: dict[str, type[SparseAutoencoder]] = {}

# SAELens' names for our architectures (written to cfg.json["architecture"]).
_SAELENS_NAMES = {"relu": "standard", "topk": "topk", "batchtopk": "batchtopk", "jumprelu": "jumprelu"}


SELECT_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""SAEConfig.select_dtype's choices."""


@dataclass(frozen=True)
class SAEConfig:
    """Architecture hyper-parameters of one SAE (training hyper-parameters live in TrainConfig)."""

    architecture: str
    """Registered architecture name: relu, topk, ..."""
    d_in: int
    """Width of the activations (the model's d_model)."""
    d_sae: int
    """Number of latents."""
    k: int = 32
    """Active latents per token (TopK family)."""
    l1_coefficient: float = 5.0
    """Sparsity weight λ of the ReLU+L1 loss (per token, Σ_i |f_i|·‖W_dec,i‖)."""
    aux_k: int | None = None
    """Dead latents used by the AuxK loss (default d_in / 2)."""
    aux_k_coef: float = 1 / 32
    """Weight of the AuxK loss that revives dead latents (0 disables it)."""
    dead_tokens: int = 100_000
    """A latent that has not fired for this many training tokens counts as dead (AuxK)."""
    select_dtype: str = "float32"
    """Training only, sparse kernels (TopK, BatchTopK family, sparse ReLU and JumpReLU): dtype of the encoder
    matmul that picks each step's active latents. "bfloat16" runs that matmul ≈ 3.7× faster on CPUs with
    native bf16 (AVX512-BF16 / AMX) and on GPUs; the picked latents' values and every gradient stay float32
    (near-ties may pick another latent). Inference and evaluation always encode in float32."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Architecture-specific settings (e.g. Matryoshka prefix sizes, orthogonality γ)."""

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"sae.architecture must be one of {', '.join(sorted(ARCHITECTURES))}; got "
                f"'{self.architecture}'"
            )
        if self.d_in < 1 or self.d_sae < 1:
            raise ConfigError(f"sae.d_in and sae.d_sae must be positive; got {self.d_in}, {self.d_sae}")
        if ARCHITECTURES[self.architecture].uses_k and not 1 <= self.k <= self.d_sae:
            raise ConfigError(f"sae.k must be between 1 and sae.d_sae ({self.d_sae}); got {self.k}")
        if self.select_dtype not in SELECT_DTYPES:
            raise ConfigError(
                f"sae.select_dtype must be one of {', '.join(SELECT_DTYPES)}; got {self.select_dtype!r}"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SAEConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LossTerms(NamedTuple):
    """What one training step needs: per-token losses (TERM tilts these), batch-level extras, and logs."""

    per_token: Tensor
    """[N] reconstruction + sparsity loss of each token."""
    aux: Tensor
    """Scalar batch-level auxiliary loss (AuxK, orthogonality, ...), already weighted."""
    latents: Tensor
    """[N, m] latent activations (for dead-latent tracking and L0)."""
    recon: Tensor
    """[N, d] reconstruction."""
    logs: dict[str, float]


class ForwardOutput(NamedTuple):
    latents: Tensor
    recon: Tensor


class SparseAutoencoder(nn.Module):
    """x̂ = f(x) W_dec + b_dec with f(x) = σ((x − b_dec) W_enc + b_enc); subclasses choose σ and the loss."""

    name: ClassVar[str]
    uses_k: ClassVar[bool] = True
    """Whether `k` (active latents per token) is meaningful for this architecture."""
    unit_norm_decoder: ClassVar[bool] = True
    """Keep decoder rows at unit norm (TopK family). ReLU+L1 instead weights its penalty by the row norms."""

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        super().__init__()
        self.cfg = cfg
        self.input_scale = float(input_scale)
        """Activations are multiplied by this before encoding (set by the trainer; folded in on save)."""
        d, m = cfg.d_in, cfg.d_sae
        self.W_enc = nn.Parameter(torch.empty(d, m))
        self.b_enc = nn.Parameter(torch.zeros(m))
        self.W_dec = nn.Parameter(torch.empty(m, d))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.register_buffer("tokens_since_fired", torch.zeros(m, dtype=torch.long), persistent=False)
        self.reset_parameters()

    # --- parameters -------------------------------------------------------------------------------------
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            w = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=generator)
            w /= w.norm(dim=1, keepdim=True)
            self.W_dec.copy_(w * self.initial_decoder_norm())
            self.W_enc.copy_(w.T)
            self.b_enc.zero_()
            self.b_dec.zero_()

    def initial_decoder_norm(self) -> float:
        return 1.0

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        if self.unit_norm_decoder:
            self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_decoder_grad_(self) -> None:
        """Project out the gradient component that would change unit-norm decoder rows' length."""
        if self.unit_norm_decoder and self.W_dec.grad is not None:
            # g − (g·ŵ) ŵ with ŵ = w / ‖w‖, as g − (g·w / ‖w‖²) w in one in-place pass
            W, grad = self.W_dec, self.W_dec.grad
            coef = torch.linalg.vecdot(grad, W) / torch.linalg.vecdot(W, W).clamp_min(1e-16)
            grad.addcmul_(W, coef.unsqueeze(1), value=-1.0)

    @property
    def select_dtype(self) -> torch.dtype:
        """The dtype the sparse training kernels pick active latents in (cfg.select_dtype)."""
        return SELECT_DTYPES[self.cfg.select_dtype]

    # --- forward -------------------------------------------------------------------------------------------
    def pre_acts(self, x: Tensor) -> Tensor:
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def activation(self, pre: Tensor) -> Tensor:
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        return self.activation(self.pre_acts(x))

    def decode(self, latents: Tensor) -> Tensor:
        return decode_dense_codes(latents, self.W_dec) + self.b_dec

    def forward(self, x: Tensor) -> ForwardOutput:
        f = self.encode(x)
        return ForwardOutput(f, self.decode(f))

    @torch.no_grad()
    def reconstruct_raw(self, x: Tensor) -> ForwardOutput:
        """Encode/decode activations in the model's own scale (handles input_scale); any leading shape."""
        shape = x.shape
        xs = x.reshape(-1, shape[-1]).to(self.W_enc.dtype) * self.input_scale
        f, r = self(xs)
        return ForwardOutput(f.reshape(*shape[:-1], -1), (r / self.input_scale).reshape(shape).to(x.dtype))

    # --- training --------------------------------------------------------------------------------------
    def sparsity_per_token(self, latents: Tensor) -> Tensor:
        return latents.new_zeros(latents.shape[0])

    def training_loss(self, x: Tensor) -> LossTerms:
        """Per-token squared error (summed over d) + sparsity penalty, and batch-level auxiliary terms."""
        f, recon = self(x)
        mse = (recon - x).pow(2).sum(dim=-1)
        sparsity = self.sparsity_per_token(f)
        aux = self.auxiliary_loss(x, f, recon)
        logs = {"mse": mse.mean().item(), "sparsity": sparsity.mean().item(), "aux": float(aux.detach())}
        return LossTerms(mse + sparsity, aux, f, recon, logs)

    def auxiliary_loss(self, x: Tensor, latents: Tensor, recon: Tensor) -> Tensor:
        return x.new_zeros(())

    @torch.no_grad()
    def update_dead_tracking_(self, latents: Tensor) -> None:
        """Count tokens since each latent last fired, from dense or sparse COO [N, m] latents."""
        self.tokens_since_fired += latents.shape[0]
        if latents.is_sparse:
            self.tokens_since_fired[latents._indices()[1][latents._values() > 0]] = 0
        else:
            self.tokens_since_fired[(latents > 0).any(dim=0)] = 0

    def dead_mask(self) -> Tensor:
        return self.tokens_since_fired >= self.cfg.dead_tokens

    # --- persistence -----------------------------------------------------------------------------------
    def weights_for_saving(self) -> dict[str, Tensor]:
        """Weights acting on raw activations: W_enc·c, W_dec/c, b_dec/c for input scale c."""
        c = self.input_scale
        return {
            "W_enc": (self.W_enc.detach() * c).contiguous(),
            "b_enc": self.b_enc.detach().contiguous(),
            "W_dec": (self.W_dec.detach() / c).contiguous(),
            "b_dec": (self.b_dec.detach() / c).contiguous(),
        }

    def load_saved_weights(self, weights: dict[str, Tensor], input_scale: float) -> None:
        c = float(input_scale)
        self.input_scale = c
        with torch.no_grad():
            self.W_enc.copy_(weights["W_enc"] / c)
            self.b_enc.copy_(weights["b_enc"])
            self.W_dec.copy_(weights["W_dec"] * c)
            self.b_dec.copy_(weights["b_dec"] * c)

    def continue_from_(self, parent: SparseAutoencoder) -> None:
        """Training state beyond the weights that a finetune takes over from the SAE it starts from (none by
        default; ReLU + L1: its steered L1 coefficient)."""

    def set_input_scale_(self, scale: float) -> None:
        """Re-express the same function for inputs multiplied by `scale` (used before training/finetuning)."""
        self.load_saved_weights(self.weights_for_saving(), input_scale=scale)

    def save(self, out_dir: str | Path, metadata: dict[str, Any] | None = None) -> None:
        """Write cfg.json + sae_weights.safetensors (weights first, cfg last: cfg marks a complete save)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg = {
            "architecture": _SAELENS_NAMES.get(self.cfg.architecture, self.cfg.architecture),
            "d_in": self.cfg.d_in,
            "d_sae": self.cfg.d_sae,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": True,
            "normalize_activations": "none",
            "saeflow": {"sae": self.cfg.to_dict(), "input_scale": self.input_scale},
            **(metadata or {}),
        }
        if self.cfg.architecture in ("topk", "batchtopk"):
            cfg["k"] = self.cfg.k
        weights = {k: v.float().cpu() for k, v in self.weights_for_saving().items()}
        with atomic_path(out_dir / "sae_weights.safetensors") as tmp:
            save_file(weights, str(tmp))
        with atomic_path(out_dir / "cfg.json") as tmp:
            tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def register(cls: type[SparseAutoencoder]) -> type[SparseAutoencoder]:
    ARCHITECTURES[cls.name] = cls
    return cls


def make_sae(cfg: SAEConfig | dict, *, seed: int | None = None) -> SparseAutoencoder:
    if isinstance(cfg, dict):
        cfg = SAEConfig.from_dict(cfg)
    sae = ARCHITECTURES[cfg.architecture](cfg)
    if seed is not None:
        sae.reset_parameters(torch.Generator().manual_seed(seed))
    return sae


def _read_weights(path: Path) -> dict[str, Tensor]:
    """Tensors of a safetensors file; a corrupt or truncated file is a one-line DataError naming it."""
    try:
        return load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own SafetensorError, or OSError
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            f"{path}: not a readable safetensors file ({reason}); the file is corrupt or truncated: "
            "delete it (and cfg.json beside it) and rerun the training step"
        ) from None


def load_sae(sae_dir: str | Path, device: str = "cpu") -> SparseAutoencoder:
    """Load a saeflow SAE from cfg.json + sae_weights.safetensors (input scale 1: raw activations)."""
    sae_dir = Path(sae_dir)
    cfg_path, weights_path = sae_dir / "cfg.json", sae_dir / "sae_weights.safetensors"
    if not cfg_path.is_file() or not weights_path.is_file():
        raise DataError(f"{sae_dir}: expected cfg.json and sae_weights.safetensors (a saved SAE)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(
            f"{cfg_path}: not valid JSON ({err}); delete the SAE folder and rerun training"
        ) from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("saeflow"), dict) or "sae" not in cfg["saeflow"]:
        raise DataError(f"{cfg_path}: not written by saeflow (no 'saeflow' section)")
    sae = make_sae(SAEConfig.from_dict(cfg["saeflow"]["sae"]))
    weights = _read_weights(weights_path)
    expected = {k: tuple(v.shape) for k, v in sae.weights_for_saving().items()}
    for key in ("W_enc", "b_enc", "W_dec", "b_dec"):  # extras such as `threshold` are optional
        if key not in weights:
            raise DataError(
                f"{weights_path}: tensor '{key}' is missing (expected shape {list(expected[key])})"
            )
    for key, shape in expected.items():
        got = tuple(weights[key].shape) if key in weights else shape
        if got != shape and not (
            key == "threshold" and weights[key].numel() == 1
        ):  # a scalar threshold broadcasts
            raise DataError(
                f"{weights_path}: tensor '{key}' has shape {list(got)}; cfg.json "
                f"(d_in={sae.cfg.d_in}, d_sae={sae.cfg.d_sae}) implies {list(shape)}"
            )
    sae.load_saved_weights(weights, input_scale=1.0)
    return sae.to(device)
