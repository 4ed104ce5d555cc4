"""Feature absorption on the first-letter task (docs/methods.md § Absorption; Chanin et al. 2024, "A is for
Absorption"; SAEBench's `absorption` metric), in a simplified, self-contained form.

Definition implemented here (every constant is a keyword argument):

1. **Tokens.** Keep the tokens whose decoded string, after stripping leading whitespace and the tokenizer's
   word-start markers (``Ġ``, ``▁``), is alphabetic ASCII (:func:`first_letters`); the label is its lower-case
   first letter. The tokens are split at random into a probe-train and a test share (``train_fraction``).
2. **Probes.** For every letter with at least ``min_train`` positive train tokens, a binary
logistic-regression
   probe "starts with L" vs the rest (sklearn, one-vs-rest, on the raw activations); p_L = its unit weight
   vector.
3. **Main latents.** The ``n_main`` latents whose encoder column W_enc[:, i] (``direction="encoder"``) or
decoder
   row W_dec[i] (``"decoder"``) has the highest cosine with p_L.
4. **Denominator.** Test tokens of letter L that the probe classifies correctly (decision value > 0); letters
with
   fewer than ``min_test`` of them are left out.
5. **Absorption** (SAEBench's *full absorption*). Such a token is *absorbed* when none of the main latents
fires
   (f_i = 0), the token's own probe projection x · p_L is positive, and the active latents j outside the main
   set whose unit decoder direction has cos(W_dec[j], p_L) ≥ ``cos_threshold`` carry a large share of it: the
   ``max_absorbers`` largest of their projections f_j · cos(W_dec[j], p_L) sum to ≥ ``min_projection`` · (x ·
   p_L). Defaults as SAEBench: cos_threshold 0.025, min_projection 0.4, one absorbing latent.
6. **Result.** Per-letter rate = absorbed / correctly classified; ``absorption`` = mean of the per-letter
rates;
   ``absorption_pooled`` = all absorbed / all correctly classified tokens.

Where this simplifies SAEBench: SAEBench trains its probes on a vocabulary of single-token words in an ICL
prompt ("{word} has the first letter:") and picks main latents by k-sparse probing on the SAE latents; here
the probe is trained on the tokens of ordinary held-out text at the SAE's layer, and main latents come from
the cosine of encoder (or decoder) directions with the probe. SAEBench also integrates absorbed and partially
absorbed fractions (its "full" vs "partial" absorption) with ablation-based attribution; here absorption is
the binary rule of step 5 (with one absorbing latent SAEBench takes the top-projecting latent and then checks
its cosine; here the top-projecting latent among those that pass the cosine). Scores are therefore comparable
between SAEs of one run, not with SAEBench's published numbers.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from saeflow.errors import ConfigError, DataError

LETTERS = string.ascii_lowercase
WORD_START_MARKERS = "Ġ▁"
DEFAULT_COS_THRESHOLD = 0.025  # SAEBench's absorbing-latent cosine threshold


@dataclass(frozen=True)
class AbsorptionSettings:
    """Knobs of the absorption metric (module docstring, steps 1–6)."""

    train_fraction: float = 0.5
    """Share of the letter tokens used to fit the probes; the rest are the test tokens."""
    n_main: int = 1
    """Main latents per letter (highest cosine with the probe)."""
    direction: Literal["encoder", "decoder"] = "encoder"
    """Which latent direction is compared with the probe to pick the main latents."""
    cos_threshold: float = DEFAULT_COS_THRESHOLD
    """Minimum cos(W_dec[j], probe) of an absorbing latent."""
    min_projection: float = 0.4
    """Absorbing latents' summed probe projection, as a share of the token's own x · probe, to count."""
    max_absorbers: int = 1
    """Absorbing latents whose projections are summed (SAEBench's full absorption: 1)."""
    min_train: int = 5
    """Letters with fewer positive probe-train tokens get no probe."""
    min_test: int = 2
    """Letters with fewer correctly classified test tokens are left out of the score."""
    probe_c: float = 1.0
    """Inverse L2 regularisation strength of the logistic-regression probes."""
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AbsorptionSettings:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"absorption settings: unknown key(s) {', '.join(unknown)}")
        s = cls(**d)
        if not 0 < s.train_fraction < 1:
            raise ConfigError(f"absorption.train_fraction must lie in (0, 1); got {s.train_fraction}")
        if s.n_main < 1 or s.max_absorbers < 1:
            raise ConfigError(
                f"absorption.n_main and absorption.max_absorbers must be ≥ 1; got {s.n_main}, "
                f"{s.max_absorbers}"
            )
        if s.direction not in ("encoder", "decoder"):
            raise ConfigError(f"absorption.direction must be 'encoder' or 'decoder'; got {s.direction!r}")
        return s


@dataclass(frozen=True)
class AbsorptionResult:
    absorption: float
    """Mean over scored letters of the per-letter absorption rate (nan when no letter could be scored)."""
    absorption_pooled: float
    """Absorbed / correctly classified test tokens, over all scored letters."""
    per_letter: dict[str, float]
    """Absorption rate of each scored letter."""
    n_correct: dict[str, int]
    """Correctly classified test tokens of each scored letter (the denominators)."""
    n_absorbed: dict[str, int]
    main_latents: dict[str, list[int]]
    n_letter_tokens: int
    """Tokens that start with a letter (train + test)."""
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_letter(token: str) -> str | None:
    """Lower-case first letter of a token string such as ' The', 'Ġthe', '▁the'; None unless alphabetic
    ASCII."""
    s = token.lstrip().lstrip(WORD_START_MARKERS).lstrip()
    if not s or not s.isascii() or not s.isalpha():
        return None
    return s[0].lower()


def first_letters(tokens: Sequence[str]) -> list[str | None]:
    return [first_letter(t) for t in tokens]


def _unit(v: Tensor, dim: int = -1) -> Tensor:
    return v / v.norm(dim=dim, keepdim=True).clamp_min(1e-12)


def fit_letter_probes(
    acts: np.ndarray, letters: np.ndarray, settings: AbsorptionSettings
) -> dict[str, tuple[np.ndarray, float]]:
    """Binary logistic-regression probe "starts with L" for each letter with enough positives: L -> (w, b)."""
    from sklearn.linear_model import LogisticRegression

    probes = {}
    for letter in LETTERS:
        y = letters == letter
        if y.sum() < settings.min_train or y.all():
            continue
        clf = LogisticRegression(C=settings.probe_c, max_iter=1000, class_weight="balanced")
        clf.fit(acts, y)
        probes[letter] = (clf.coef_[0].astype(np.float64), float(clf.intercept_[0]))
    return probes


def absorption_score(
    acts: Tensor,
    letters: Sequence[str | None],
    latents: Tensor,
    W_enc: Tensor,
    W_dec: Tensor,
    settings: AbsorptionSettings | None = None,
    probes: dict[str, tuple[np.ndarray, float]] | None = None,
) -> AbsorptionResult:
    """Absorption (module docstring) from activations x [N, d], their first letters (None: not a letter
    token), the SAE's latents f(x) [N, m], W_enc [d, m] and W_dec [m, d]. Projections are of the raw
    activations, as in SAEBench.

    `probes` (letter -> (weight [d], bias)) skips the probe fit: then every letter token is a test token.
    """
    s = settings or AbsorptionSettings()
    if acts.shape[0] != len(letters) or latents.shape[0] != len(letters):
        raise DataError(
            f"absorption: {len(letters)} letters for {acts.shape[0]} activations and "
            f"{latents.shape[0]} latent rows"
        )
    keep = np.array([lt is not None for lt in letters], dtype=bool)
    if keep.sum() == 0:
        raise DataError("absorption: no token starts with a letter")
    x = acts[torch.from_numpy(keep)].double()
    f = latents[torch.from_numpy(keep)].double()
    lab = np.array([lt for lt in letters if lt is not None])
    n = len(lab)
    if probes is None:
        perm = np.random.default_rng(s.seed).permutation(n)
        n_train = round(s.train_fraction * n)
        train, test = perm[:n_train], perm[n_train:]
        probes = fit_letter_probes(x[train].numpy(), lab[train], s)
    else:
        test = np.arange(n)
    W_dec = W_dec.detach().double()
    dirs = W_enc.detach().double().T if s.direction == "encoder" else W_dec
    dirs_unit, dec_unit = _unit(dirs), _unit(W_dec)
    x_test, f_test, lab_test = x[test], f[test], lab[test]

    per_letter, n_correct, n_absorbed, mains = {}, {}, {}, {}
    for letter, (w, b) in sorted(probes.items()):
        w_t = torch.as_tensor(w, dtype=torch.float64)
        p = _unit(w_t)
        main = torch.topk(dirs_unit @ p, s.n_main).indices
        rows = torch.from_numpy(np.flatnonzero(lab_test == letter))
        if len(rows) == 0:
            continue
        xs, fs = x_test[rows], f_test[rows]
        correct = (xs @ w_t + b) > 0
        if int(correct.sum()) < s.min_test:
            continue
        xs, fs = xs[correct], fs[correct]
        main_off = (fs[:, main] <= 0).all(dim=1)
        cos = dec_unit @ p
        candidate = cos >= s.cos_threshold
        candidate[main] = False
        proj = torch.where((fs > 0) & candidate, fs * cos, torch.zeros_like(fs))  # f_j · cos(W_dec[j], p)
        absorber_proj = proj.topk(min(s.max_absorbers, proj.shape[1]), dim=1).values.sum(dim=1)
        x_proj = xs @ p
        absorbed = (
            main_off & (x_proj > 0) & (absorber_proj > 0) & (absorber_proj >= s.min_projection * x_proj)
        )
        per_letter[letter] = float(absorbed.double().mean())
        n_correct[letter] = len(xs)
        n_absorbed[letter] = int(absorbed.sum())
        mains[letter] = [int(i) for i in main]
    total = sum(n_correct.values())
    return AbsorptionResult(
        absorption=float(np.mean(list(per_letter.values()))) if per_letter else float("nan"),
        absorption_pooled=sum(n_absorbed.values()) / total if total else float("nan"),
        per_letter=per_letter,
        n_correct=n_correct,
        n_absorbed=n_absorbed,
        main_latents=mains,
        n_letter_tokens=n,
        settings=asdict(s),
    )
