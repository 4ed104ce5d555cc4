"""Probes, SHIFT and SCR on Bias-in-Bios-style sets (docs/methods.md § Bias in Bios).

Representations are mean-pooled residuals at the SAE's layer over the non-pad positions of a text,
**excluding position 0**: at layer 15 of SmolLM2 its norm is about 100× the others' (an attention sink),
so it would dominate the mean while saying nothing about the text (saeflow.activations never stores it).

Because the ablation is linear in the latents and the pooling is a mean, ablating on every token and then
pooling is the same as pooling first: mean_t(x_t − Σ_{i∈S} f_i(x_t) W_dec,i) = x̄ − Σ_{i∈S} f̄_i W_dec,i.
So everything here works on pooled x̄ [N, d] and pooled latents f̄ [N, m]; the SAE error term is kept.

Labels: ``label`` 0 = profession A (male-only in the ambiguous set), 1 = profession B (female-only);
``gender`` "M"/"F"; ``group`` "A/M", "A/F", "B/M", "B/F".

Reported on the balanced test set, for a profession probe and a representation:

* ``profession_acc``: the probe's accuracy at predicting the profession.
* ``worst_group_acc``: the minimum of that accuracy over the four groups; beside it
  ``worst_group_ci_low`` / ``worst_group_ci_high``, a 95% bootstrap interval (test bios resampled with
  replacement within each group, 1000 times, seeded) and ``n_<group>``, the group sizes: with 30 bios a group,
  one bio moves its accuracy 3.3 points.
* ``gender_acc``: the profession probe's predictions scored against gender, A ↔ male, B ↔ female (a probe
  that only reads gender scores 1, one that ignores gender 0.5). This is the papers' "Gender" column: in
  Marks et al. / the SSAE paper the Oracle scores 49.4% although its representation is unchanged, which
  only this definition gives.
* ``gender_probe_acc``: how much gender a fresh linear probe can still read from the representation: a
  logistic regression trained to predict gender with stratified k-fold cross-validation on the balanced
  test set (folds stratified by the four groups, seeded); the accuracy over all out-of-fold predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import torch

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError, DataError

GROUP_NAMES = ("A/M", "A/F", "B/M", "B/F")
SELECTIONS = ("separation", "gender_probe")
ATTRIBUTIONS = {"linear": "", "ig": " (IG)"}
"""Latent attributions and the suffix of their SHIFT rows ("GSAE SHIFT", "GSAE SHIFT (IG)")."""


@dataclass(frozen=True)
class ShiftConfig:
    """Probe and SHIFT settings (mirrors ``bias_in_bios`` in the config)."""

    n_latents: int = 20
    """Latents ablated in the rows of the main table."""
    scr_n: tuple[int, ...] = (2, 5, 10, 20, 50, 100)
    """Numbers of ablated latents of the SCR curve."""
    selection: str = "separation"
    """separation: rank latents by attribution to the ambiguous profession probe and keep those whose pooled
    activations separate gender better than profession (|Cohen's d|) on the balanced selection set;
    gender_probe: rank by attribution to a gender probe trained on the selection set."""
    C: float = 1.0
    """Inverse L2 strength of every logistic regression."""
    max_iter: int = 2000
    standardize: bool = True
    """Standardise features (fitted on the probe's training set) before the logistic regression."""
    gender_folds: int = 5
    """Folds of the cross-validated gender probe on the balanced test set."""
    attributions: tuple[str, ...] = ("linear", "ig")
    """Latent attributions that rank the latents, each giving its own SHIFT rows and SCR curve: linear
    (latent_attribution) and ig (ig_attribution: integrated-gradient effects on the probe's loss, SHIFT's).
    The first also gives the gender-gap split."""
    ig_steps: int = 10
    """Riemann (midpoint) steps of the integrated gradients."""
    seed: int = 0
    """Seeds the folds and the random-ablation baseline."""

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise ConfigError(
                f"bias_in_bios.selection must be one of {', '.join(SELECTIONS)}; got {self.selection!r}"
            )
        if self.n_latents < 1 or any(int(n) < 1 for n in self.scr_n):
            raise ConfigError("bias_in_bios.n_latents and every scr_n must be at least 1")
        if self.gender_folds < 2:
            raise ConfigError(f"bias_in_bios.gender_folds must be at least 2; got {self.gender_folds}")
        unknown = [m for m in self.attributions if m not in ATTRIBUTIONS]
        if unknown or not self.attributions or len(set(self.attributions)) != len(self.attributions):
            raise ConfigError(
                f"bias_in_bios.attribution.methods must be distinct names among {', '.join(ATTRIBUTIONS)}; "
                f"got {list(self.attributions)}"
            )
        if self.ig_steps < 1:
            raise ConfigError(f"bias_in_bios.attribution.steps must be at least 1; got {self.ig_steps}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShiftConfig:
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in names}
        probe = d.get("probe") or {}
        kw.update({k: v for k, v in probe.items() if k in names})
        if "scr_n" in kw:
            kw["scr_n"] = tuple(int(n) for n in kw["scr_n"])
        attribution = d.get("attribution") or {}
        if "methods" in attribution:
            kw["attributions"] = tuple(str(m) for m in attribution["methods"])
        if "steps" in attribution:
            kw["ig_steps"] = int(attribution["steps"])
        return cls(**kw)


class LabelledSet(NamedTuple):
    """Pooled representations of one set and its labels."""

    x: np.ndarray
    """[N, d] float64 mean-pooled residuals."""
    label: np.ndarray
    """[N] int: 0 = profession A, 1 = profession B."""
    gender: np.ndarray
    """[N] str: "M" or "F"."""
    group: np.ndarray
    """[N] str: "A/M", ..."""

    def with_x(self, x: np.ndarray) -> LabelledSet:
        return self._replace(x=x)


class LinearProbe(NamedTuple):
    """A logistic-regression probe expressed on raw features: p(class 1) = σ(x·w + b)."""

    w: np.ndarray
    b: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.w + self.b > 0).astype(int)


class Scores(NamedTuple):
    profession_acc: float
    gender_acc: float
    worst_group_acc: float
    gender_probe_acc: float
    group_acc: dict[str, float]
    worst_group_ci: tuple[float, float] = (math.nan, math.nan)
    """95% bootstrap interval of worst_group_acc (see worst_group_interval)."""
    group_n: Mapping[str, int] = MappingProxyType({})
    """Test bios per group."""


BOOTSTRAP_RESAMPLES = 1000


def worst_group_interval(
    pred: np.ndarray,
    label: np.ndarray,
    group: np.ndarray,
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the worst-group accuracy: each group's test bios resampled with
    replacement (group sizes kept, as the balanced test set fixes them), `resamples` times, seeded."""
    correct = np.asarray(pred) == np.asarray(label)
    rng = np.random.default_rng(seed)
    per_group = [correct[group == g] for g in GROUP_NAMES if (group == g).any()]
    if not per_group:
        return math.nan, math.nan
    accs = np.empty((resamples, len(per_group)))
    for j, c in enumerate(per_group):
        accs[:, j] = c[rng.integers(0, len(c), size=(resamples, len(c)))].mean(1)
    lo, hi = np.quantile(accs.min(1), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- probes


def fit_probe(x: np.ndarray, y: np.ndarray, cfg: ShiftConfig = ShiftConfig()) -> LinearProbe:
    """L2 logistic regression (sklearn, lbfgs) on optionally standardised features, returned in raw space."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    if set(np.unique(y).tolist()) != {0, 1}:
        raise DataError(
            f"a probe needs both classes 0 and 1 in its training set; got {sorted(set(y.tolist()))}"
        )
    mean = x.mean(0) if cfg.standardize else np.zeros(x.shape[1])
    scale = x.std(0) if cfg.standardize else np.ones(x.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    lr = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter)
    lr.fit((x - mean) / scale, y)
    w = lr.coef_[0] / scale  # classes_ is [0, 1]: coef_ scores class 1
    return LinearProbe(w, float(lr.intercept_[0] - w @ mean))


def group_accuracies(pred: np.ndarray, label: np.ndarray, group: np.ndarray) -> dict[str, float]:
    """Profession accuracy within each group present (the worst-group accuracy is their minimum)."""
    out = {}
    for g in GROUP_NAMES:
        sel = group == g
        if sel.any():
            out[g] = float((pred[sel] == label[sel]).mean())
    return out


def classifier_gender_accuracy(pred: np.ndarray, gender: np.ndarray) -> float:
    """Share of predictions that match the gender under the ambiguous set's mapping A ↔ M, B ↔ F."""
    return float((pred == (gender == "F").astype(int)).mean())


def stratified_folds(strata: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index of each item: within each stratum, a seeded permutation dealt round-robin into k folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(strata), dtype=int)
    for s in sorted(set(strata.tolist())):
        idx = np.flatnonzero(strata == s)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    return fold


def gender_probe_accuracy(data: LabelledSet, cfg: ShiftConfig = ShiftConfig()) -> float:
    """Cross-validated accuracy of a gender probe on `data` (k folds stratified by group)."""
    y = (data.gender == "F").astype(int)
    folds = stratified_folds(data.group, cfg.gender_folds, cfg.seed)
    correct = 0
    for k in range(cfg.gender_folds):
        test = folds == k
        if not test.any():
            continue
        probe = fit_probe(data.x[~test], y[~test], cfg)
        correct += int((probe.predict(data.x[test]) == y[test]).sum())
    return correct / len(y)


def score(
    probe: LinearProbe,
    test: LabelledSet,
    cfg: ShiftConfig = ShiftConfig(),
    gender_probe_acc: float | None = None,
) -> Scores:
    """All four numbers of a probe on a (possibly ablated) balanced test set."""
    pred = probe.predict(test.x)
    groups = group_accuracies(pred, test.label, test.group)
    return Scores(
        profession_acc=float((pred == test.label).mean()),
        gender_acc=classifier_gender_accuracy(pred, test.gender),
        worst_group_acc=min(groups.values()),
        gender_probe_acc=gender_probe_accuracy(test, cfg) if gender_probe_acc is None else gender_probe_acc,
        group_acc=groups,
        worst_group_ci=worst_group_interval(pred, test.label, test.group, seed=cfg.seed),
        group_n={g: int((test.group == g).sum()) for g in groups},
    )


# --------------------------------------------------------------------------- latents


def latent_attribution(f: np.ndarray, classes: np.ndarray, w: np.ndarray, W_dec: np.ndarray) -> np.ndarray:
    """SCR-style linear effect of each latent on a probe: e_i = |(mean f_i on class 0 − on class
    1)·(w·W_dec,i)|.

    f: [N, m] pooled latents; classes: [N] in {0, 1}; w: [d] probe weights (raw space); W_dec: [m, d].
    """
    classes = np.asarray(classes)
    delta = f[classes == 0].mean(0) - f[classes == 1].mean(0)
    return np.abs(delta * (W_dec @ w))


def integrated_gradients(
    metric: Callable[[torch.Tensor], torch.Tensor],
    f: torch.Tensor,
    baseline: torch.Tensor | None = None,
    steps: int = 10,
) -> torch.Tensor:
    """[N, m] integrated gradients (f − f₀)·mean_k ∂metric/∂f at f₀ + α_k (f − f₀), α_k = (k + ½)/steps
    (midpoint rule), for a metric giving one value per row ([N, m] → [N]) that depends on its own row only.

    Row n estimates metric_n(f) − metric_n(f₀) summed over latents (completeness); exact when the metric is
    linear in f, and for a quadratic one too. f₀ defaults to 0 (zero-ablation)."""
    f = f.detach()
    f0 = torch.zeros_like(f) if baseline is None else baseline.detach().to(f)
    grads = torch.zeros_like(f)
    for k in range(steps):
        point = (f0 + (k + 0.5) / steps * (f - f0)).requires_grad_(True)
        grads += torch.autograd.grad(metric(point).sum(), point)[0]
    return (f - f0) * grads / steps


def spliced_probe_loss(
    x: np.ndarray, f: np.ndarray, W_dec: np.ndarray, probe: LinearProbe, y: np.ndarray
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-bio logistic loss of `probe` (labels y) on the spliced representation as a function of the pooled
    latents f': x − f W_dec + f' W_dec, i.e. the SAE error term (and b_dec) kept and the latents replaced; at
    f' = f it is the probe's loss on x, at f' with latents zeroed the loss after ablating them."""
    W = torch.as_tensor(W_dec, dtype=torch.float64)
    rest = torch.as_tensor(x, dtype=torch.float64) - torch.as_tensor(f, dtype=torch.float64) @ W
    w = torch.as_tensor(probe.w, dtype=torch.float64)
    target = torch.as_tensor(y, dtype=torch.float64)

    def loss(latents: torch.Tensor) -> torch.Tensor:
        logit = (rest + latents @ W) @ w + probe.b
        return torch.nn.functional.binary_cross_entropy_with_logits(logit, target, reduction="none")

    return loss


def ig_attribution(
    x: np.ndarray, f: np.ndarray, y: np.ndarray, probe: LinearProbe, W_dec: np.ndarray, steps: int = 10
) -> np.ndarray:
    """SHIFT's effect of each latent on the probe's loss (Marks et al.): the integrated-gradient estimate of
    the change in the mean loss over the set when the latent is zero-ablated (error term kept),
    e_i = |mean_n −IG_n,i| with IG from the latents' values to 0 through spliced_probe_loss. [m]"""
    f_t = torch.as_tensor(f, dtype=torch.float64)
    ig = integrated_gradients(spliced_probe_loss(x, f, W_dec, probe, y), f_t, steps=steps)
    return np.abs(ig.mean(0).numpy())  # |mean −IG| = |mean IG|


def latent_effects(
    method: str,
    data: LabelledSet,
    f: np.ndarray,
    y: np.ndarray,
    probe: LinearProbe,
    W_dec: np.ndarray,
    cfg: ShiftConfig = ShiftConfig(),
) -> np.ndarray:
    """[m] each latent's effect on `probe` (trained on `data` with labels y) by attribution `method`."""
    if method == "ig":
        return ig_attribution(data.x, f, y, probe, W_dec, cfg.ig_steps)
    return latent_attribution(f, y, probe.w, W_dec)


def cohens_d(f: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Per-latent (mean on positive − mean on the rest) / pooled standard deviation; 0 where it is 0."""
    positive = np.asarray(positive, dtype=bool)
    a, b = f[positive], f[~positive]
    var = ((len(a) - 1) * a.var(0, ddof=1) + (len(b) - 1) * b.var(0, ddof=1)) / max(len(a) + len(b) - 2, 1)
    sd = np.sqrt(var)
    diff = a.mean(0) - b.mean(0)
    return np.divide(diff, sd, out=np.zeros_like(diff), where=sd > 0)


class LatentRanking(NamedTuple):
    ranking: np.ndarray
    """Candidate latents, most effective first; the top n are ablated."""
    effects: np.ndarray
    """[m] the effect used for the ranking."""


def rank_gender_latents(
    f_amb: np.ndarray,
    amb: LabelledSet,
    f_sel: np.ndarray,
    sel: LabelledSet,
    W_dec: np.ndarray,
    probe: LinearProbe,
    cfg: ShiftConfig = ShiftConfig(),
    attribution: str = "linear",
) -> LatentRanking:
    """Gender-driven latents in order of effect (see ShiftConfig.selection for the two methods), the effect
    measured by `attribution` (linear or ig)."""
    if cfg.selection == "separation":
        effects = latent_effects(attribution, amb, f_amb, amb.label, probe, W_dec, cfg)
        d_gender = np.abs(cohens_d(f_sel, sel.gender == "F"))
        d_prof = np.abs(cohens_d(f_sel, sel.label == 1))
        candidate = (d_gender > d_prof) & (effects > 0)
    else:
        gender_y = (sel.gender == "F").astype(int)
        gprobe = fit_probe(sel.x, gender_y, cfg)
        effects = latent_effects(attribution, sel, f_sel, gender_y, gprobe, W_dec, cfg)
        candidate = effects > 0
    idx = np.flatnonzero(candidate)
    ranking = idx[np.lexsort((idx, -effects[idx]))]
    return LatentRanking(ranking, effects)


def ablate(x: np.ndarray, f: np.ndarray, W_dec: np.ndarray, latents: Sequence[int]) -> np.ndarray:
    """x' = x − Σ_{i∈S} f_i W_dec,i (zero-ablation with the SAE error term kept); exact on pooled x and f."""
    latents = np.asarray(latents, dtype=int)
    if latents.size == 0:
        return x.copy()
    return x - f[:, latents] @ W_dec[latents]


def random_latents(f_amb: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n latents drawn uniformly (seeded) among those active on the ambiguous set (pooled mean > 0)."""
    alive = np.flatnonzero(f_amb.mean(0) > 0)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(alive, size=min(n, len(alive)), replace=False))


# --------------------------------------------------------------------------- study


def row(method: str, s: Scores, **extra: Any) -> dict[str, Any]:
    return {
        "method": method,
        "profession_acc": s.profession_acc,
        "gender_acc": s.gender_acc,
        "worst_group_acc": s.worst_group_acc,
        "worst_group_ci_low": s.worst_group_ci[0],
        "worst_group_ci_high": s.worst_group_ci[1],
        "gender_probe_acc": s.gender_probe_acc,
        **{f"acc_{g}": a for g, a in s.group_acc.items()},
        **{f"n_{g}": n for g, n in s.group_n.items()},
        **extra,
    }


def baseline_rows(
    amb: LabelledSet, test: LabelledSet, oracle: LabelledSet, cfg: ShiftConfig = ShiftConfig()
) -> list[dict[str, Any]]:
    """Original (probe on the ambiguous set) and Oracle (probe on the balanced training set)."""
    gender = gender_probe_accuracy(test, cfg)
    original = score(fit_probe(amb.x, amb.label, cfg), test, cfg, gender)
    oracle_s = score(fit_probe(oracle.x, oracle.label, cfg), test, cfg, gender)
    return [row("Original", original), row("Oracle", oracle_s)]


class GenderGap(NamedTuple):
    """Where the probe's gender signal lives: its logit gap between female and male bios on the balanced set
    (mean over the two professions of mean(w·x + b | F) − mean(w·x + b | M)), split into the SAE latents' part
    Σ_i w·W_dec,i Δf̄_i and the rest (SAE error term; b_dec cancels). SHIFT keeps the error term, so it can
    remove at most the latents' part."""

    total: float
    latents: float
    error: float
    removed: float
    """The part carried by the ablated latents."""


def gender_gap(
    probe: LinearProbe, test: LabelledSet, f_test: np.ndarray, W_dec: np.ndarray, ablated: Sequence[int]
) -> GenderGap:
    female, prof_b = test.gender == "F", test.label == 1

    def gap(v: np.ndarray) -> np.ndarray:
        return (
            (v[female & prof_b].mean(0) + v[female & ~prof_b].mean(0))
            - (v[~female & prof_b].mean(0) + v[~female & ~prof_b].mean(0))
        ) / 2

    per_latent = gap(f_test) * (W_dec @ probe.w)
    total = float(probe.w @ gap(test.x))
    ablated = np.asarray(ablated, dtype=int)
    return GenderGap(
        total, float(per_latent.sum()), total - float(per_latent.sum()), float(per_latent[ablated].sum())
    )


@dataclass
class ShiftResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    """SHIFT, SHIFT + retrain for each attribution ("SHIFT (IG)" for ig), Random ablation, Random ablation +
    retrain at cfg.n_latents."""
    scr: list[dict[str, Any]] = field(default_factory=list)
    """One row per (method in SHIFT / SHIFT (IG) / Random ablation, n) without retraining: accuracies and SCR
    scores."""
    latents: list[int] = field(default_factory=list)
    """The ablated latents of the first attribution's SHIFT row, in order of effect."""
    n_candidates: int = 0
    gender_gap: dict[str, float] = field(default_factory=dict)
    """GenderGap of the ambiguous-set probe, with the first attribution's SHIFT latents ablated."""
    attributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per attribution: its SHIFT row's latents, n_candidates and gender_gap."""


def scr_score(a_ablated: float, a_base: float, a_oracle: float) -> float:
    """(A_ablated − A_base) / (A_oracle − A_base); NaN when the oracle is no better than the base."""
    denom = a_oracle - a_base
    return (a_ablated - a_base) / denom if denom != 0 else math.nan


def shift_study(
    label: str,
    amb: LabelledSet,
    test: LabelledSet,
    sel: LabelledSet,
    f_amb: np.ndarray,
    f_test: np.ndarray,
    f_sel: np.ndarray,
    W_dec: np.ndarray,
    base: dict[str, dict[str, Any]],
    cfg: ShiftConfig = ShiftConfig(),
) -> ShiftResult:
    """SHIFT with one SAE: rank gender latents, ablate the top n, score with and without retraining.

    base: the Original and Oracle rows (from baseline_rows) by method, for the SCR scores.
    """
    probe = fit_probe(amb.x, amb.label, cfg)
    rankings = {
        m: rank_gender_latents(f_amb, amb, f_sel, sel, W_dec, probe, cfg, attribution=m).ranking
        for m in cfg.attributions
    }
    result = ShiftResult()
    a_base, a_oracle = base["Original"], base["Oracle"]

    def evaluate(latents: np.ndarray, retrain: bool, gender_probe_acc: float | None = None) -> Scores:
        test_x = test.with_x(ablate(test.x, f_test, W_dec, latents))
        p = fit_probe(ablate(amb.x, f_amb, W_dec, latents), amb.label, cfg) if retrain else probe
        return score(p, test_x, cfg, gender_probe_acc)  # the gender probe depends on the representation only

    for n in sorted({*cfg.scr_n, cfg.n_latents}):
        chosen = {f"SHIFT{ATTRIBUTIONS[m]}": ranking[:n] for m, ranking in rankings.items()}
        chosen["Random ablation"] = random_latents(f_amb, n, cfg.seed + n)
        for method, latents in chosen.items():
            s = evaluate(latents, retrain=False)
            if n in cfg.scr_n:
                result.scr.append({
                    **row(method, s), "sae": label, "n": n, "n_ablated": len(latents),
                    "scr": scr_score(s.profession_acc, a_base["profession_acc"], a_oracle["profession_acc"]),
                    "scr_worst_group": scr_score(s.worst_group_acc, a_base["worst_group_acc"],
                                                 a_oracle["worst_group_acc"]),
                })  # fmt: skip
            if n == cfg.n_latents:
                name = f"Random ablation ({label})" if method == "Random ablation" else f"{label} {method}"
                result.rows.append(row(name, s, sae=label, n_ablated=len(latents)))
                retrained = evaluate(latents, retrain=True, gender_probe_acc=s.gender_probe_acc)
                result.rows.append(row(f"{name} + retrain", retrained, sae=label, n_ablated=len(latents)))
    for m, ranking in rankings.items():
        latents = ranking[: cfg.n_latents]
        result.attributions[m] = {
            "latents": [int(i) for i in latents],
            "n_candidates": len(ranking),
            "gender_gap": gender_gap(probe, test, f_test, W_dec, latents)._asdict(),
        }
    first = result.attributions[cfg.attributions[0]]
    result.latents, result.n_candidates, result.gender_gap = (
        first["latents"],
        first["n_candidates"],
        first["gender_gap"],
    )
    return result


# --------------------------------------------------------------------------- pooled activations


def pool_by_doc(store: ActivationStore, n_docs: int, fn=None, batch_size: int = 4096) -> torch.Tensor:
    """[n_docs, k] mean over each document's stored rows of fn(rows) (rows themselves when fn is None)."""
    sums: torch.Tensor | None = None
    counts = torch.zeros(n_docs, dtype=torch.float64)
    for block in store.iter_rows(batch_size):
        values = (block.acts if fn is None else fn(block.acts)).double()
        if sums is None:
            sums = torch.zeros(n_docs, values.shape[1], dtype=torch.float64)
        index = block.doc_index.long()
        sums.index_add_(0, index, values)
        counts.index_add_(0, index, torch.ones(len(index), dtype=torch.float64))
    if sums is None or (counts == 0).any():
        raise DataError(f"{store.path}: some documents have no stored tokens (a text of a single token?)")
    return sums / counts[:, None]


def check_docs(store: ActivationStore, ids: Sequence[str]) -> None:
    """The activation set must hold exactly the set's documents, in order."""
    if list(store.manifest.docs) != list(ids):
        raise DataError(
            f"{store.path}: its documents do not match the set's ({len(store.manifest.docs)} "
            f"stored, {len(ids)} in the set); re-extract the activations"
        )
