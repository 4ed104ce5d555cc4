"""Steering with SAE latents: add α·‖h‖_typical·d_i (unit decoder direction) to the SAE layer's output during
generation, or clamp f_i to a value and re-decode with the SAE error kept; at selected positions only.

The edit is a function h -> h' for a "replace layer output h by fn(h)" splice
(`saeflow.models.causal_lm.splice`, later `SubjectModel.splice`). Under a KV cache each forward sees only new
positions, so the function tracks the absolute position itself (`Steerer.reset()` before each generation).
Metrics per generation: concept mention, Δ log-prob of the concept's first tokens after the prompt, whether
the latent fires on the generated text, perplexity of the generation under the unsteered model, similarity to
a target text (any embedder). Controls: α = 0, and random latents of matched frequency.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from saeflow.errors import ConfigError
from saeflow.latents import encode_rows

Splice = Callable[[int, Callable[[Tensor], Tensor]], AbstractContextManager]
"""(layer, fn) -> context manager replacing that layer's output h by fn(h)."""


def lm_splice(lm) -> Splice:
    """The causal-LM splice bound to a loaded LM (wherever the refactor has put it)."""
    try:
        from saeflow.models.causal_lm import splice
    except ImportError:  # before the models/ refactor
        from saeflow.lm import splice
    return lambda layer, fn: splice(lm, layer, fn)


@dataclass(frozen=True)
class Positions:
    """Absolute positions to steer: [start, stop) (stop None = to the end), or exactly `only`."""

    start: int = 0
    stop: int | None = None
    only: tuple[int, ...] | None = None

    def mask(self, positions: Tensor) -> Tensor:
        if self.only is not None:
            return torch.isin(positions, torch.tensor(self.only, dtype=positions.dtype))
        m = positions >= self.start
        return m if self.stop is None else m & (positions < self.stop)


class Steerer:
    """fn(h) for a splice: mode "add" adds alpha·norm·d (d = unit decoder row of `latent`); mode "clamp" sets
    f_latent to `value` (h + (value - f_latent(h))·W_dec[latent], i.e. SAE error kept)."""

    def __init__(
        self,
        sae,
        latent: int,
        *,
        alpha: float = 0.0,
        norm: float = 1.0,
        mode: str = "add",
        value: float = 0.0,
        positions: Positions | None = None,
    ):
        if mode not in ("add", "clamp"):
            raise ConfigError(f"steering.mode must be 'add' or 'clamp'; got {mode!r}")
        self.sae, self.latent, self.alpha, self.norm, self.mode, self.value = (
            sae,
            latent,
            alpha,
            norm,
            mode,
            value,
        )
        self.positions = positions or Positions()
        w = sae.W_dec.detach()[latent].float()
        self.direction = w / w.norm().clamp_min(1e-8)
        self.offset = 0

    def reset(self) -> None:
        self.offset = 0

    def __call__(self, h: Tensor) -> Tensor:
        T = h.shape[1]
        pos = torch.arange(self.offset, self.offset + T, device=h.device)
        self.offset += T
        sel = self.positions.mask(pos).to(h.dtype)[None, :, None]
        if self.mode == "add":
            delta = (self.alpha * self.norm) * self.direction.to(h.device, h.dtype)
            return h + sel * delta
        scale = float(getattr(self.sae, "input_scale", 1.0))
        f = encode_rows(self.sae, h.reshape(-1, h.shape[-1]).float())[:, self.latent].reshape(h.shape[:2])
        w = (self.sae.W_dec.detach()[self.latent].float() / scale).to(h.device, h.dtype)
        return h + sel * (self.value - f.to(h.dtype))[..., None] * w


# --------------------------------------------------------------------------------------------------
# generation and metrics
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def generate(
    lm, splice: Splice, layer: int, prompt: str, steerer: Steerer | None, max_new_tokens: int
) -> list[int]:
    """Greedy continuation token ids of `prompt` (steered when `steerer` is given)."""
    ids = lm.tokenizer(prompt, return_tensors="pt")["input_ids"].to(lm.device)
    kw = {
        "attention_mask": torch.ones_like(ids),
        "do_sample": False,
        "max_new_tokens": max_new_tokens,
        "pad_token_id": lm.tokenizer.pad_token_id,
    }
    if steerer is None:
        out = lm.model.generate(ids, **kw)
    else:
        steerer.reset()
        with splice(layer, steerer):
            out = lm.model.generate(ids, **kw)
    return out[0, ids.shape[1] :].tolist()


@torch.no_grad()
def continuation_logprob(lm, prompt_ids: Sequence[int], cont_ids: Sequence[int]) -> float:
    """Sum of log p(cont | prompt) under the model (with whatever splice is active)."""
    if not cont_ids:
        return 0.0
    ids = torch.tensor([list(prompt_ids) + list(cont_ids)], device=lm.device)
    logp = torch.log_softmax(lm.model(input_ids=ids).logits[0].float(), -1)
    n = len(prompt_ids)
    return float(sum(logp[n - 1 + j, t] for j, t in enumerate(cont_ids)))


def concept_logprob(
    lm, prompt: str, terms: Sequence[str], steerer: Steerer | None, splice: Splice, layer: int
) -> float:
    """Mean over terms of log p(" term" right after the prompt)."""
    p = lm.tokenizer(prompt)["input_ids"]
    vals = []
    for term in terms:
        c = lm.tokenizer(" " + term, add_special_tokens=False)["input_ids"]
        if steerer is None:
            vals.append(continuation_logprob(lm, p, c))
        else:
            steerer.reset()
            with splice(layer, steerer):
                vals.append(continuation_logprob(lm, p, c))
    return float(np.mean(vals)) if vals else float("nan")


@dataclass(frozen=True)
class SteerConfig:
    alphas: tuple[float, ...] = (0.0, 2.0, 4.0, 8.0)
    """Strengths, in multiples of the typical residual norm (0 = unsteered control)."""
    mode: str = "add"
    max_new_tokens: int = 24
    n_random: int = 2
    """Random control latents per target, of matched frequency."""
    positions: Positions = Positions()
    seed: int = 0


def matched_random_latents(frequency: Tensor, latent: int, n: int, seed: int, pool: int = 50) -> list[int]:
    """n latents drawn (seeded) from the `pool` live latents whose frequency is closest to `latent`'s."""
    live = [i for i in range(len(frequency)) if i != latent and frequency[i] > 0]
    live.sort(key=lambda i: (abs(float(frequency[i]) - float(frequency[latent])), i))
    cand = live[:pool]
    return sorted(random.Random(seed * 7919 + latent).sample(cand, min(n, len(cand))))


@dataclass(frozen=True)
class SteerRow:
    concept: str
    latent: int
    control: str
    """"target" or "random" (a matched-frequency latent)."""
    alpha: float
    prompt: str
    text: str
    mention: bool
    delta_logprob: float
    fires: bool
    perplexity: float
    similarity: float


def steer_concepts(
    lm,
    sae,
    layer: int,
    targets: Mapping[str, int],
    terms: Mapping[str, Sequence[str]],
    prompts: Sequence[str],
    frequency: Tensor,
    norm: float,
    cfg: SteerConfig,
    *,
    splice: Splice | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Dose-response rows for each concept's target latent and its random controls, over prompts and
    alphas."""
    splice = splice or lm_splice(lm)
    rows = []
    for concept, latent in targets.items():
        words = [t.lower() for t in terms[concept]]
        for kind, lat in [("target", latent)] + [
            ("random", r) for r in matched_random_latents(frequency, latent, cfg.n_random, cfg.seed)
        ]:
            for prompt in prompts:
                base_lp = concept_logprob(lm, prompt, terms[concept], None, splice, layer)
                p_ids = lm.tokenizer(prompt)["input_ids"]
                for alpha in cfg.alphas:
                    st = Steerer(
                        sae,
                        lat,
                        alpha=alpha,
                        norm=norm,
                        mode=cfg.mode,
                        value=alpha * norm,
                        positions=cfg.positions,
                    )
                    gen = generate(lm, splice, layer, prompt, st, cfg.max_new_tokens)
                    text = lm.tokenizer.decode(gen, skip_special_tokens=True)
                    lp = concept_logprob(lm, prompt, terms[concept], st, splice, layer)
                    nll = -continuation_logprob(lm, p_ids, gen) / max(len(gen), 1)
                    fires = _fires(lm, sae, layer, p_ids, gen, lat)
                    sim = float("nan")
                    if embed is not None and text.strip():
                        v = np.asarray(embed([text, concept.replace("_", " ")]), dtype=float)
                        sim = float(v[0] @ v[1] / max(np.linalg.norm(v[0]) * np.linalg.norm(v[1]), 1e-12))
                    rows.append(
                        SteerRow(
                            concept,
                            lat,
                            kind,
                            alpha,
                            prompt,
                            text,
                            any(w in text.lower() for w in words),
                            lp - base_lp,
                            fires,
                            math.exp(min(nll, 50.0)),
                            sim,
                        )
                    )
    return pd.DataFrame([asdict(r) for r in rows], columns=list(SteerRow.__dataclass_fields__))


@torch.no_grad()
def _fires(lm, sae, layer, prompt_ids, gen, latent) -> bool:
    if not gen:
        return False
    try:
        from saeflow.models.causal_lm import residual_stream
    except ImportError:
        from saeflow.lm import residual_stream
    ids = torch.tensor([list(prompt_ids) + list(gen)])
    h = residual_stream(lm, ids, None, layer)[0, len(prompt_ids) :].float()
    return bool((encode_rows(sae, h)[:, latent] > 0).any())


def dose_response(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric per (concept, control, alpha)."""
    metrics = ["mention", "delta_logprob", "fires", "perplexity", "similarity"]
    out = rows.assign(mention=rows.mention.astype(float), fires=rows.fires.astype(float))
    return out.groupby(["concept", "control", "alpha"], as_index=False)[metrics].mean()


def plot_dose_response(table: pd.DataFrame, path: str | Path) -> Path:
    """Mention rate and perplexity against alpha, target vs random latents (mean over concepts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for control, g in table.groupby("control"):
        m = g.groupby("alpha", as_index=False)[["mention", "perplexity"]].mean()
        axes[0].plot(m.alpha, m.mention, marker="o", label=control)
        axes[1].plot(m.alpha, m.perplexity, marker="o", label=control)
    axes[0].set(xlabel="α (multiples of typical ‖h‖)", ylabel="concept mention rate", ylim=(-0.05, 1.05))
    axes[1].set(xlabel="α (multiples of typical ‖h‖)", ylabel="perplexity (unsteered model)", yscale="log")
    axes[0].legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
