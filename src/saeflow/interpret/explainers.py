"""Explainers behind one interface: `Explainer.explain(LatentExamples) -> Explanation`.

The default, `TokenPatternExplainer`, is deterministic and offline (N2G-style): the tokens at the maximum
activation of the top contexts, and the bigrams ending there, that are over-represented against non-activating
contexts. Its structured pattern is what the rule-based detection scorer reads. LLM explainers live in
`saeflow.interpret.llm`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field

from saeflow.errors import ConfigError
from saeflow.interpret.examples import Example, LatentExamples


@dataclass(frozen=True)
class Explanation:
    latent: int
    text: str
    """Short natural-language explanation."""
    explainer: str
    pattern: dict = field(default_factory=dict)
    """Structured form (token explainer): {"tokens": [[token, weight], ...], "ngrams": [[prev, token],
    ...]}."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Explainer(ABC):
    name: str = "explainer"

    @abstractmethod
    def explain(self, examples: LatentExamples) -> Explanation:
        """Explain one latent from its examples (only `train` and `background` may be read)."""


def normalise(token: str) -> str:
    """Compare tokens case- and whitespace-insensitively (BPE markers Ġ / ▁ stripped)."""
    return token.replace("Ġ", " ").replace("▁", " ").strip().lower()


def peak(example: Example) -> int:
    """Index of the highest-activation token (the centre when no other token beats it)."""
    best = example.centre
    for i, a in enumerate(example.acts):
        if a > example.acts[best]:
            best = i
    return best


@dataclass(frozen=True)
class TokenPatternConfig:
    """Token / n-gram explanations."""

    max_tokens: int = 4
    """Tokens kept in one explanation."""
    min_share: float = 0.15
    """A token must be the peak token of at least this share of the top contexts."""
    min_lift: float = 2.0
    """...and that share must be this many times its share of non-activating windows holding it."""
    smoothing: float = 0.5
    """Added to the background counts (a token absent from the background is not infinitely
    over-represented)."""

    def __post_init__(self):
        if self.max_tokens < 1 or not 0 < self.min_share <= 1 or self.min_lift < 0:
            raise ConfigError(
                "token explainer: max_tokens >= 1, 0 < min_share <= 1 and min_lift >= 0 required"
            )


class TokenPatternExplainer(Explainer):
    name = "token"

    def __init__(self, cfg: TokenPatternConfig | None = None):
        self.cfg = cfg or TokenPatternConfig()

    def explain(self, examples: LatentExamples) -> Explanation:
        train = [e for e in examples.train if e.tokens]
        if not train:
            return Explanation(examples.latent, "(never active)", self.name, {"tokens": [], "ngrams": []})
        peaks, bigrams = Counter(), Counter()
        for e in train:
            i = peak(e)
            tok = normalise(e.tokens[i])
            peaks[tok] += 1
            if i > 0:
                bigrams[(normalise(e.tokens[i - 1]), tok)] += 1
        n, nb, s = len(train), len(examples.background), self.cfg.smoothing
        in_bg = Counter(t for e in examples.background for t in {normalise(x) for x in e.tokens})
        scored = []
        for tok, count in peaks.items():
            share = count / n
            lift = share / ((in_bg[tok] + s) / (nb + 2 * s))
            scored.append((share, lift, tok))
        scored.sort(key=lambda x: (-x[0], -x[1], x[2]))
        kept = [x for x in scored if x[0] >= self.cfg.min_share and x[1] >= self.cfg.min_lift]
        weak = not kept
        kept = (kept or scored[:1])[: self.cfg.max_tokens]
        tokens = [[tok, round(share, 4)] for share, _, tok in kept]
        chosen = {tok for _, _, tok in kept}
        ngrams = [
            [p, t]
            for (p, t), c in sorted(bigrams.items(), key=lambda x: (-x[1], x[0]))
            if t in chosen and p and c / n >= self.cfg.min_share
        ][:2]
        text = ", ".join(f'"{tok}" ({share:.0%})' for tok, share in tokens)
        text = ("weak: " if weak else "") + "the token(s) " + text
        if ngrams:
            text += "; often in " + ", ".join(f'"{p} {t}"' for p, t in ngrams)
        coverage = sum(share for _, share in tokens)
        return Explanation(
            examples.latent,
            text,
            self.name,
            {"tokens": tokens, "ngrams": ngrams, "coverage": round(coverage, 4), "weak": weak},
        )
