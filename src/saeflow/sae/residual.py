"""Residual SAEs of a frozen base SAE (the trainable part of boosted SAEs, saeflow.studies.boosting).

A residual SAE reads x and reconstructs the frozen base's error e = x − x̂_base with no decoder bias:
ê = f_res(x) W_dec^res. It is an ordinary registered architecture (`residual_topk`, `residual_batchtopk`)
whose `training_loss` computes its own target from the base, so the standard trainer (saeflow.train.train_sae)
trains it unchanged. The base is named by `sae.extra.base` (the directory of a saved SAE); it is held outside
the module's parameters and state: it is neither trained nor checkpointed nor saved with the residual.

Saved layout: the residual's own weights only, in the SAELens layout of its inference architecture (`topk`, or
`jumprelu` for the BatchTopK variant) with b_dec = 0 — SAELens loads it as an SAE that maps x to ê. The
encoder's input centring (the trainer's data-mean b_dec, kept fixed during training) is folded into b_enc on
save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from saeflow.errors import ConfigError, DataError
from saeflow.sae.base import LossTerms, SAEConfig, load_sae, register
from saeflow.sae.batchtopk import BatchTopKSAE
from saeflow.sae.kernels import decode_dense_codes
from saeflow.sae.topk import TopKSAE, auxk_loss, topk_mask_values

RESIDUAL_ARCHITECTURES = {"topk": "residual_topk", "batchtopk": "residual_batchtopk"}
"""Residual architecture for each base-style architecture name a boosting config may ask for."""


DEFAULT_ENCODER_INIT_SCALE = 0.1


class ResidualMixin:
    """Turns an SAE class into a residual SAE of a frozen base: target = x − x̂_base, decoder without bias.

    `b_dec` is repurposed as a fixed input centring (the trainer initialises it to the data mean; it receives
    no gradient) and is not added on decoding.
    """

    saelens_name: str

    def __init__(self, cfg: SAEConfig, *, input_scale: float = 1.0):
        super().__init__(cfg, input_scale=input_scale)
        base_dir = cfg.extra.get("base")
        if not base_dir:
            raise ConfigError(
                f"sae.extra.base must name the saved base SAE directory of a {cfg.architecture} SAE"
            )
        if not Path(base_dir).is_dir():
            raise DataError(
                f"base SAE directory {base_dir} (sae.extra.base) does not exist; train the base first"
            )
        base = load_sae(base_dir)
        if base.cfg.d_in != cfg.d_in:
            raise ConfigError(f"residual d_in ({cfg.d_in}) differs from its base's ({base.cfg.d_in})")
        base.requires_grad_(False)
        self.__dict__["base"] = (
            base  # plain attribute: not a submodule, so not trained, checkpointed or saved
        )

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Encoder = scale·W_decᵀ (extra.encoder_init_scale, default 0.1): the boosted SAE starts close to
        the base instead of adding a random reconstruction as large as x to it."""
        super().reset_parameters(generator)
        with torch.no_grad():
            self.W_enc.mul_(float(self.cfg.extra.get("encoder_init_scale", DEFAULT_ENCODER_INIT_SCALE)))

    def pre_acts(self, x: Tensor) -> Tensor:
        return (x - self.b_dec.detach()) @ self.W_enc + self.b_enc

    def decode(self, latents: Tensor) -> Tensor:
        return decode_dense_codes(latents, self.W_dec)

    @torch.no_grad()
    def base_error(self, x: Tensor) -> Tensor:
        """e = x − x̂_base for x in this SAE's (scaled) input space."""
        base = self.base.to(x.device)
        s = self.input_scale
        return x - base.reconstruct_raw(x / s).recon * s

    def weights_for_saving(self) -> dict[str, Tensor]:
        w = super().weights_for_saving()
        centre = self.b_dec.detach()  # scaled space; pre = x_raw·(c W_enc) + (b_enc − centre·W_enc)
        w["b_enc"] = (self.b_enc.detach() - centre @ self.W_enc.detach()).contiguous()
        w["b_dec"] = torch.zeros_like(w["b_dec"])
        return w

    def save(self, out_dir, metadata: dict[str, Any] | None = None) -> None:
        boost = {
            "base": str(self.cfg.extra["base"]),
            "note": "reconstructs the base SAE's error x - x_hat_base; add its output to the base's",
        }
        super().save(
            out_dir,
            {"architecture": self.saelens_name, "k": self.cfg.k, "saeflow_boost": boost, **(metadata or {})},
        )


@register
class ResidualTopKSAE(ResidualMixin, TopKSAE):
    name = "residual_topk"
    saelens_name = "topk"

    def training_loss(self, x: Tensor) -> LossTerms:
        e = self.base_error(x)
        pre = self.pre_acts(x)
        f = topk_mask_values(pre, self.cfg.k)
        recon = self.decode(f)
        mse = (recon - e).pow(2).sum(dim=-1)
        aux = auxk_loss(self, e, pre, recon)
        logs = {
            "mse": mse.mean().item(),
            "base_mse": e.pow(2).sum(-1).mean().item(),
            "sparsity": 0.0,
            "aux": float(aux),
        }
        return LossTerms(mse, aux, f, recon, logs)


@register
class ResidualBatchTopKSAE(ResidualMixin, BatchTopKSAE):
    name = "residual_batchtopk"
    saelens_name = "jumprelu"

    def encoder_centre(self) -> Tensor:
        return self.b_dec.detach()

    def decoder_offset(self) -> Tensor:
        return self.b_dec.new_zeros(())

    def training_loss(self, x: Tensor) -> LossTerms:
        e = self.base_error(x)
        terms = self.loss_against(x, e)
        terms.logs["base_mse"] = e.pow(2).sum(-1).mean().item()
        return terms
