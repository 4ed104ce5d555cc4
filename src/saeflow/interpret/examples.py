"""Text examples of one latent, from `saeflow.latents.LatentActivations`, split for explaining and scoring.

Explain from the top contexts (and half the random non-activating ones as background); score on held-out
quantile-sampled contexts (activating) and the other half of the random ones (non-activating).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from saeflow.latents import Contexts, LatentActivations

Decode = Callable[[Sequence[int]], list[str]]
"""Token ids -> one display string per token (e.g. `token_strings(tokenizer)`)."""


@dataclass(frozen=True)
class Example:
    """One context window: its tokens, the latent's activation at each, and which token is the centre."""

    tokens: tuple[str, ...]
    acts: tuple[float, ...]
    centre: int
    activating: bool
    """Whether the latent is active at the centre (a top / quantile context) or not (a random context)."""

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def max_act(self) -> float:
        return max(self.acts, default=0.0)


@dataclass(frozen=True)
class LatentExamples:
    latent: int
    train: tuple[Example, ...]
    """Top-activating contexts (what an explainer sees)."""
    background: tuple[Example, ...]
    """Non-activating contexts an explainer may contrast against."""
    test_active: tuple[Example, ...]
    """Held-out activating contexts (quantile-sampled, not in the top-N)."""
    test_inactive: tuple[Example, ...]
    """Held-out non-activating contexts."""
    frequency: float = 0.0


def token_strings(tokenizer) -> Decode:
    """A Decode for a Hugging Face tokenizer: each id decoded on its own (keeps BPE's leading spaces)."""

    def decode(ids: Sequence[int]) -> list[str]:
        return [tokenizer.decode([int(i)]) for i in ids]

    return decode


def _examples(ctx: Contexts, latent: int, decode: Decode, active: bool, centre: int) -> list[Example]:
    out = []
    for j in range(ctx.rows.shape[1]):
        if int(ctx.rows[latent, j]) < 0:
            continue
        ids = ctx.token_ids[latent, j]
        keep = (ids >= 0).nonzero().squeeze(1)
        first = int(keep[0])
        toks = decode(ids[keep].tolist())
        acts = tuple(float(a) for a in ctx.acts[latent, j][keep])
        out.append(Example(tuple(toks), acts, centre - first, active))
    return out


def latent_examples(acts: LatentActivations, latent: int, decode: Decode) -> LatentExamples:
    """The examples of `latent`; random contexts alternate between background (even) and test (odd)."""
    c = acts.config.window_left
    random = _examples(acts.random, latent, decode, False, c)
    return LatentExamples(
        latent=latent,
        train=tuple(_examples(acts.top, latent, decode, True, c)),
        background=tuple(random[0::2]),
        test_active=tuple(_examples(acts.quantile, latent, decode, True, c)),
        test_inactive=tuple(random[1::2]),
        frequency=float(acts.frequency[latent]),
    )
