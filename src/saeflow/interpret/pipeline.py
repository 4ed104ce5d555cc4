"""One SAE's interpretation, for any study: top activations over an activation set, n latents sampled (seeded)
among those that fire at least `min_activations` times, each explained from its top contexts (token patterns,
or an LLM) and scored on held-out contexts (quantile-sampled activating vs random non-activating) by detection
(and embedding, fuzzing) beside the shuffled-explanation control (another sampled latent's explanation on the
same contexts), and a dashboard of the sampled latents with their output-token effects through the LM's
unembedding (`interpret_sae`, `write_sae_dashboard`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from saeflow.activations import ActivationStore
from saeflow.interpret.dashboard import LogitEffects, logit_effects, near_duplicates, write_dashboard
from saeflow.interpret.examples import Decode, LatentExamples, latent_examples, token_strings
from saeflow.interpret.explainers import Explainer, Explanation, TokenPatternConfig, TokenPatternExplainer
from saeflow.interpret.scorers import (
    Classifier,
    DetectionScorer,
    EmbeddingScorer,
    FuzzingScorer,
    RuleClassifier,
    Scorer,
    score_latents,
)
from saeflow.latents import LatentActivations, LatentsConfig, top_activations

SCORE_COLUMNS = [
    "sae",
    "latent",
    "frequency",
    "explainer",
    "scorer",
    "explanation",
    "balanced_accuracy",
    "f1",
    "auroc",
    "control_balanced_accuracy",
    "control_f1",
    "control_auroc",
    "control_latent",
    "n_active",
    "n_inactive",
    "prompt_tokens",
    "completion_tokens",
    "seconds",
]


def sample_latents(acts: LatentActivations, n: int, min_activations: int, seed: int) -> list[int]:
    """n latents (sorted) drawn with `random.Random(seed)` from those active on >= min_activations rows; when
    fewer qualify, all of them plus the most frequent live latents, so that at least two are scored (the
    control needs another latent's explanation)."""
    counts = (acts.frequency.double() * acts.n_rows).round().long()
    eligible = [i for i in range(acts.d_sae) if int(counts[i]) >= min_activations]
    if len(eligible) >= n:
        return sorted(random.Random(seed).sample(eligible, n))
    live = sorted(
        (i for i in range(acts.d_sae) if int(counts[i]) > 0 and i not in eligible),
        key=lambda i: (-int(counts[i]), i),
    )
    return sorted(eligible + live[: max(0, min(n, 2) - len(eligible))])


class CachedEmbed:
    """An Embed that embeds each distinct text once (contexts are scored twice: real and control
    explanation)."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray]):
        self.embed, self.cache = embed, {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if new:
            for t, v in zip(new, np.asarray(self.embed(new), dtype=float), strict=True):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts])


@dataclass
class SAEInterpretation:
    scores: pd.DataFrame
    explanations: dict[int, Explanation]
    latents: list[int]


def make_explainer(cfg: Mapping[str, Any]) -> Explainer:
    if cfg.get("explainer", "token") == "llm":
        from saeflow.interpret.llm import LLMConfig, LLMExplainer, make_client

        llm = LLMConfig(**(cfg.get("llm") or {}))
        return LLMExplainer(make_client(llm), llm)
    return TokenPatternExplainer(TokenPatternConfig(**(cfg.get("token") or {})))


def make_classifier(cfg: Mapping[str, Any]) -> Classifier:
    if cfg.get("classifier", "rule") == "llm":
        from saeflow.interpret.llm import LLMClassifier, LLMConfig, make_client

        return LLMClassifier(make_client(LLMConfig(**(cfg.get("llm") or {}))))
    return RuleClassifier()


def make_scorers(cfg: Mapping[str, Any], classifier: Classifier, embed: Callable | None) -> list[Scorer]:
    out: list[Scorer] = []
    for name in cfg.get("scorers") or ["detection"]:
        if name == "detection":
            out.append(DetectionScorer(classifier))
        elif name == "fuzzing":
            out.append(FuzzingScorer(classifier, seed=int(cfg.get("seed", 0))))
        elif name == "embedding":
            if embed is None:
                raise ValueError("the embedding scorer needs an embedder")
            out.append(EmbeddingScorer(embed))
    return out


def explain_and_score(
    acts: LatentActivations,
    latents: Sequence[int],
    decode: Decode,
    cfg: Mapping[str, Any],
    *,
    sae_name: str,
    embed: Callable | None = None,
    explainer: Explainer | None = None,
    classifier: Classifier | None = None,
) -> SAEInterpretation:
    """Explanations and scores (one row per latent x scorer, control beside) of `latents`."""
    explainer = explainer or make_explainer(cfg)
    if cfg.get("explainer", "token") == "llm":  # the LLM path is capped: tens of latents
        latents = list(latents)[: int((cfg.get("llm") or {}).get("max_latents", 20))]
    examples: dict[int, LatentExamples] = {lat: latent_examples(acts, lat, decode) for lat in latents}
    explanations = {lat: explainer.explain(ex) for lat, ex in examples.items()}
    scorers = make_scorers(cfg, classifier or make_classifier(cfg), CachedEmbed(embed) if embed else None)
    frames = []
    seed = int(cfg.get("seed", 0))
    for scorer in scorers:
        df = score_latents(explanations, examples, scorer, seed=seed)
        # explanation cost (LLM tokens) belongs to the latent once: add it to the detection rows
        if scorer.name == scorers[0].name:
            df["prompt_tokens"] += [explanations[lat].prompt_tokens for lat in df.latent]
            df["completion_tokens"] += [explanations[lat].completion_tokens for lat in df.latent]
        frames.append(df)
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS[1:])
    scores.insert(0, "sae", sae_name)
    scores["frequency"] = [float(acts.frequency[int(lat)]) for lat in scores.latent]
    return SAEInterpretation(scores[SCORE_COLUMNS], explanations, list(latents))


def sparse_logit_effects(
    W_dec: torch.Tensor, W_U: torch.Tensor, latents: Sequence[int], k: int
) -> LogitEffects:
    """`logit_effects` of `latents` only, in [d_sae, k] tensors indexed by latent (other rows zero)."""
    m = W_dec.shape[0]
    k = min(k, W_U.shape[0])
    full = [
        torch.zeros(m, k, dtype=torch.long),
        torch.zeros(m, k),
        torch.zeros(m, k, dtype=torch.long),
        torch.zeros(m, k),
    ]
    if latents:
        idx = torch.tensor(list(latents), dtype=torch.long)
        e = logit_effects(W_dec[idx], W_U, k=k)
        for t, part in zip(full, (e.top_ids, e.top_values, e.bottom_ids, e.bottom_values), strict=True):
            t[idx] = part
    return LogitEffects(*full)


def write_sae_dashboard(
    out_dir: str | Path,
    name: str,
    acts: LatentActivations,
    result: SAEInterpretation,
    decode: Decode,
    W_dec: torch.Tensor,
    W_U: torch.Tensor | None,
    cfg: Mapping[str, Any],
) -> Path:
    d = dict(cfg.get("dashboard") or {})
    effects = (
        None
        if W_U is None
        else sparse_logit_effects(W_dec, W_U, result.latents, int(d.get("top_logits", 10)))
    )
    dup = near_duplicates(W_dec, threshold=float(d.get("duplicate_threshold", 0.9)))
    board = write_dashboard(
        out_dir,
        name,
        acts,
        decode,
        explanations=result.explanations,
        scores=result.scores,
        effects=effects,
        duplicates=dup,
        latents=result.latents,
        per_page=int(d.get("per_page", 100)),
        n_shown=int(d.get("n_shown", 8)),
    )
    return board.index


def cached_decode(decode: Decode) -> Decode:
    cache: dict[int, str] = {}

    def out(ids: Sequence[int]) -> list[str]:
        missing = [int(i) for i in ids if int(i) not in cache]
        if missing:
            cache.update(zip(missing, decode(missing), strict=True))
        return [cache[int(i)] for i in ids]

    return out


class InterpretedSAE(NamedTuple):
    acts: LatentActivations
    """Top / quantile / random contexts and frequencies of every latent."""
    result: SAEInterpretation
    decode: Decode


def interpret_sae(
    sae: Any,
    store: ActivationStore,
    tokenizer: Any,
    cfg: Mapping[str, Any],
    *,
    sae_name: str,
    embedder: str | None = None,
    row_mask: torch.Tensor | None = None,
) -> InterpretedSAE:
    """Top activations of `sae` over `store` (the rows of `row_mask` only, when given), then explanations and
    scores of the sampled latents; `embedder` is the sentence-transformer the embedding scorer uses."""
    latents_cfg = LatentsConfig.from_dict({"seed": cfg["seed"], **(cfg.get("latents") or {})})
    acts = top_activations(sae, store, latents_cfg, row_mask=row_mask)
    decode = cached_decode(token_strings(tokenizer))
    latents = sample_latents(acts, cfg["n_latents"], cfg["min_activations"], cfg["seed"])
    embed = None
    if "embedding" in (cfg.get("scorers") or []):
        from saeflow.interpret.scorers import sentence_transformer

        embed = sentence_transformer(embedder)
    result = explain_and_score(acts, latents, decode, cfg, sae_name=sae_name, embed=embed)
    return InterpretedSAE(acts, result, decode)
