"""First-letter absorption with SAEBench's protocol (Chanin et al. 2024, "A is for Absorption"; SAEBench's
``absorption`` eval, sae_bench/evals/absorption), beside the simplified held-out-text metric of
:mod:`saeflow.absorption`.

1. **Vocabulary** (:func:`vocab_words`). Single tokens whose decoded string is a space followed by ASCII
   letters (" cat"); a seeded sample of ``n_words``, split by word into probe-train and test
   (``train_fraction``, 0.8).
2. **Prompts** (:func:`build_letter_set`). Each word is read in an ICL prompt of ``icl_examples`` examples
   from its own split, ``"\\n{ex} has the first letter: E"`` joined by newlines, then ``"\\n{word} has the
   first letter:"``; the residual stream at the SAE's layer is read at the word's token. The LM is causal,
   so the text after the word does not change that residual and is not run. **Ours**: SAEBench samples fresh
   examples per prompt; here each word draws one of ``n_contexts`` sampled example blocks, whose keys/values
   are computed once.
3. **Probes**. Per letter a logistic-regression probe "starts with L" on the train residuals (balanced
   classes); letters whose probe F1 on the test words is ≤ ``min_probe_f1`` (0.6) are left out, and the
   score needs at least ``min_letters`` (20) letters (SAEBench's min_GT_probe_f1, min_feats_for_eval).
4. **Main latents** (:func:`k_sparse_probes`). An L1-penalised one-vs-rest probe on all SAE latents (BCE
   with positive-class weights, Adam lr 0.01 decayed to 1e-5 over ``sparse_epochs`` epochs, L1 0.01 on the
   mean over letters of the summed |w|; **ours**: zero-initialised); for k = 1 … ``max_k`` the k latents
   with the largest weight get a logistic regression of their own, scored by F1 on the test words. k grows
   while F1 rises by more than ``f1_jump`` (0.03); the latents of the last accepted k are the main latents
   (feature splitting when k > 1).
5. **Per word** (SAEBench's FeatureAbsorptionCalculator), for each test word of L the probe classifies
   positive (decision > 0): with p = the unit probe weight, x·p its probe projection and P_j = f_j ·
   cos(W_dec[j], p):
   - *full absorption*: every main latent has |f| < 1e-8, the top-projecting latent j* = argmax_j P_j has
     cos(W_dec[j*], p) ≥ ``full_cos_threshold`` (0.025), x·p ≥ 0 and P_j* ≥ ``min_projection`` (0.4) · x·p;
   - *absorption fraction* (partial absorption): with M = Σ_main P_j and A = the sum of the
     ``max_absorbers`` (3) largest positive P_j among non-main latents with cos ≥ ``fraction_cos_threshold``
     (0.1): 0 when M ≥ x·p or A < 0.4 · x·p; 1 when M ≤ 0; else a / (a + M) with a = min(A, x·p − M).
6. **Scores**: per letter the number of full absorptions (and the summed fractions) over the probe's true
   positives; ``full_absorption`` and ``absorption_fraction`` are the means over scored letters.
"""

from __future__ import annotations

import copy
import json
import math
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from saeflow.errors import ConfigError, DataError
from saeflow.io import atomic_path

LETTERS = string.ascii_lowercase
EPS = 1e-8  # SAEBench: a main latent with |f| below this did not fire


@dataclass(frozen=True)
class IclAbsorptionSettings:
    """Knobs of SAEBench's first-letter absorption (module docstring, steps 1–6); defaults as SAEBench's
    unless marked ours."""

    n_words: int = 2000
    """Vocabulary words sampled (ours; SAEBench takes every alphabetic token)."""
    train_fraction: float = 0.8
    icl_examples: int = 10
    n_contexts: int = 8
    """Distinct sampled ICL example blocks per split (ours; SAEBench samples one per prompt)."""
    template: str = "{word} has the first letter:"
    probe_c: float = 100.0
    """Inverse L2 strength of the sklearn letter probes at the residuals' mean-norm scale (ours; SAEBench:
    Adam with weight decay 1e-4)."""
    min_train: int = 5
    """Letters with fewer train words get no probe."""
    min_probe_f1: float = 0.6
    min_letters: int = 20
    max_k: int = 10
    f1_jump: float = 0.03
    sparse_l1: float = 0.01
    sparse_epochs: int = 50
    sparse_batch_size: int = 256
    """Mini-batch of the L1 latent probe (ours; SAEBench's 4096 is one step per epoch on our vocabulary)."""
    full_cos_threshold: float = 0.025
    fraction_cos_threshold: float = 0.1
    min_projection: float = 0.4
    max_absorbers: int = 3
    batch_size: int = 64
    """Words per LM forward."""
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> IclAbsorptionSettings:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"absorption_icl: unknown key(s) {', '.join(unknown)}")
        s = cls(**d)
        if s.template.count("{word}") != 1:
            raise ConfigError(f"absorption_icl.template must contain {{word}} once; got {s.template!r}")
        if not 0 < s.train_fraction < 1:
            raise ConfigError(f"absorption_icl.train_fraction must lie in (0, 1); got {s.train_fraction}")
        for key in ("n_words", "icl_examples", "n_contexts", "max_k", "max_absorbers", "min_letters"):
            if getattr(s, key) < 1:
                raise ConfigError(f"absorption_icl.{key} must be ≥ 1; got {getattr(s, key)}")
        return s


# ------------------------------------------------------------------------------------------ words, residuals


class VocabWord(NamedTuple):
    token_id: int
    text: str
    """Decoded token, leading space included (" cat")."""


def vocab_words(tokenizer: Any, n_words: int, seed: int = 0) -> list[VocabWord]:
    """A seeded sample of `n_words` single-token words: a space followed by ASCII letters."""
    special = set(tokenizer.all_special_ids)
    words = []
    for i in range(len(tokenizer)):
        s = tokenizer.decode([i]) if i not in special else ""
        if len(s) > 1 and s[0] == " " and s[1:].isascii() and s[1:].isalpha():
            words.append(VocabWord(i, s))
    if len(words) < 2:
        raise DataError(f"absorption_icl: the tokenizer has {len(words)} single-token words (need ≥ 2)")
    pick = np.random.default_rng(seed).permutation(len(words))[:n_words]
    return [words[i] for i in sorted(pick)]


def icl_context(examples: Sequence[str], template: str) -> str:
    """'\\n ex1 has the first letter: E\\n ex2 …\\n': SAEBench's ICL block (separator before the first
    example)."""
    lines = [f"{template.format(word=w)} {w.strip()[0].upper()}" for w in examples]
    return "\n" + "\n".join(lines) + "\n"


class _Captured(Exception):
    def __init__(self, hidden: Tensor):
        super().__init__()
        self.hidden = hidden


def _run_to_layer(lm: Any, layer: int, **kwargs) -> Tensor:
    """Hidden state [B, T, d] output by decoder layer `layer` (later layers are not run)."""

    def stop(_module, _args, output):
        raise _Captured(output[0] if isinstance(output, tuple) else output)

    handle = lm.layers[layer].register_forward_hook(stop)
    try:
        with torch.inference_mode():
            lm.model(**kwargs)
    except _Captured as done:
        return done.hidden
    finally:
        handle.remove()
    raise RuntimeError(f"layer {layer} was never reached")


def word_residuals(
    lm: Any, layer: int, prefix_ids: Sequence[int], word_ids: Sequence[int], batch_size: int
) -> Tensor:
    """Residual [N, d] at decoder layer `layer` of each word token read right after `prefix_ids`; the prefix's
    keys/values are computed once and shared by every word."""
    prefix = torch.as_tensor([list(prefix_ids)], dtype=torch.long, device=lm.device)
    with torch.inference_mode():
        cache = lm.model(input_ids=prefix, use_cache=True).past_key_values
    n_prefix = prefix.shape[1]
    out = []
    for start in range(0, len(word_ids), batch_size):
        ids = torch.as_tensor(list(word_ids[start : start + batch_size]), dtype=torch.long, device=lm.device)
        batch_cache = copy.deepcopy(cache)
        batch_cache.batch_repeat_interleave(len(ids))
        hidden = _run_to_layer(
            lm,
            layer,
            input_ids=ids[:, None],
            past_key_values=batch_cache,
            attention_mask=torch.ones(len(ids), n_prefix + 1, dtype=torch.long, device=lm.device),
            position_ids=torch.full((len(ids), 1), n_prefix, dtype=torch.long, device=lm.device),
            use_cache=True,
        )
        out.append(hidden[:, -1].float().cpu())
    return torch.cat(out)


class LetterSet(NamedTuple):
    """The probing data of one model layer: residuals at the word token of each word's ICL prompt."""

    acts: Tensor
    """[N, d] float32."""
    words: list[str]
    letters: list[str]
    train: np.ndarray
    """[N] bool: probe-train word (else test)."""
    probes: dict[str, tuple[np.ndarray, float]]
    """Letter -> (weight [d], bias) of its probe, fitted on the train words (step 3)."""

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        letters = sorted(self.probes)
        meta = {
            "words": json.dumps(self.words),
            "train": json.dumps(self.train.astype(int).tolist()),
            "probe_letters": json.dumps(letters),
            "probe_bias": json.dumps([self.probes[c][1] for c in letters]),
        }
        w = np.stack([self.probes[c][0] for c in letters]) if letters else np.zeros((0, self.acts.shape[1]))
        with atomic_path(path) as tmp:
            save_file(
                {"acts": self.acts.contiguous(), "probe_w": torch.from_numpy(w)}, str(tmp), metadata=meta
            )

    @classmethod
    def load(cls, path: str | Path) -> LetterSet:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            acts, w, meta = f.get_tensor("acts"), f.get_tensor("probe_w").numpy(), f.metadata()
        words = json.loads(meta["words"])
        bias = json.loads(meta["probe_bias"])
        probes = {c: (w[i], bias[i]) for i, c in enumerate(json.loads(meta["probe_letters"]))}
        train = np.array(json.loads(meta["train"]), bool)
        return cls(acts, words, [w.strip()[0].lower() for w in words], train, probes)


def build_letter_set(lm: Any, layer: int, settings: IclAbsorptionSettings) -> LetterSet:
    """Steps 1–3: sample the vocabulary, split it, read every word's residual in an ICL prompt, fit the
    probes."""
    s = settings
    if not 0 <= layer < len(lm.layers):
        raise ConfigError(f"absorption_icl: layer must be between 0 and {len(lm.layers) - 1}; got {layer}")
    words = vocab_words(lm.tokenizer, s.n_words, s.seed)
    rng = np.random.default_rng(s.seed + 1)
    train = np.zeros(len(words), dtype=bool)
    train[rng.permutation(len(words))[: int(len(words) * s.train_fraction)]] = True
    acts = torch.zeros(len(words), lm.d_model)
    for split in (True, False):
        idx = np.flatnonzero(train == split)
        context = rng.integers(s.n_contexts, size=len(idx))
        for c in range(s.n_contexts):
            members = idx[context == c]
            if len(members) == 0:
                continue
            # examples from the split, never the words this context is read with (SAEBench: never the word)
            pool = np.setdiff1d(idx, members) if len(idx) > len(members) else idx
            examples = [
                words[i].text for i in rng.choice(pool, min(s.icl_examples, len(pool)), replace=False)
            ]
            prefix = lm.tokenizer(icl_context(examples, s.template), add_special_tokens=True)["input_ids"]
            word_ids = [words[i].token_id for i in members]
            acts[torch.from_numpy(members)] = word_residuals(lm, layer, prefix, word_ids, s.batch_size)
    texts = [w.text for w in words]
    letters = [w.strip()[0].lower() for w in texts]
    probes = fit_probes(acts[train].double().numpy(), np.asarray(letters)[train], s)
    return LetterSet(acts, texts, letters, train, probes)


# ------------------------------------------------------------------------------------------------ probes


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    tp = int((pred & y).sum())
    denom = int(pred.sum()) + int(y.sum())
    return 2 * tp / denom if denom else 0.0


def fit_probes(acts: np.ndarray, letters: np.ndarray, settings: IclAbsorptionSettings) -> dict[str, tuple]:
    """Letter -> (weight [d], bias) of a balanced logistic-regression probe, for letters with ≥ min_train; the
    residuals are divided by their mean norm before the fit (probe_c applies at that scale)."""
    from sklearn.linear_model import LogisticRegression

    scale = (
        float(np.linalg.norm(acts, axis=1).mean()) or 1.0
    )  # fitted on x / scale: the same probe, fewer steps
    probes = {}
    for letter in LETTERS:
        y = letters == letter
        if y.sum() < settings.min_train or y.all():
            continue
        clf = LogisticRegression(C=settings.probe_c, max_iter=1000, class_weight="balanced").fit(
            acts / scale, y
        )
        probes[letter] = (clf.coef_[0].astype(np.float64) / scale, float(clf.intercept_[0]))
    return probes


class KSparse(NamedTuple):
    main: list[int]
    """Main latents: the k of the last F1 jump."""
    f1: list[float]
    """Test F1 of the k-sparse probe for k = 1 … max_k."""


def _l1_latent_probe(f: Tensor, y: Tensor, s: IclAbsorptionSettings) -> Tensor:
    """Weights [n_letters, m] of SAEBench's L1-penalised one-vs-rest probe on latents `f` [N, m]."""
    gen = torch.Generator().manual_seed(s.seed)
    probe = torch.nn.Linear(f.shape[1], y.shape[1])
    torch.nn.init.zeros_(probe.weight)  # ours: a random init is as large as the few steps' movement
    torch.nn.init.zeros_(probe.bias)
    pos = y.sum(0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(len(y) - pos) / pos.clamp_min(1))
    opt = torch.optim.Adam(probe.parameters(), lr=0.01, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.ExponentialLR(
        opt, gamma=math.exp(math.log(1e-5 / 0.01) / s.sparse_epochs)
    )
    for _ in range(s.sparse_epochs):
        for batch in torch.randperm(len(f), generator=gen).split(s.sparse_batch_size):
            loss = loss_fn(probe(f[batch]), y[batch]) + s.sparse_l1 * probe.weight.abs().sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return probe.weight.detach()


def k_sparse_probes(
    f_train: Tensor,
    lab_train: np.ndarray,
    f_test: Tensor,
    lab_test: np.ndarray,
    letters: Sequence[str],
    settings: IclAbsorptionSettings,
) -> dict[str, KSparse]:
    """Step 4: main latents and k-sparse F1 of each letter, from latents [N, m] of the train and test
    words."""
    from sklearn.linear_model import LogisticRegression

    s = settings
    y = torch.tensor(np.stack([lab_train == letter for letter in letters], 1), dtype=torch.float32)
    with torch.enable_grad():
        weights = _l1_latent_probe(f_train.float(), y, s)
    out = {}
    for i, letter in enumerate(letters):
        f1s, main, best = [], [], -math.inf
        for k in range(1, min(s.max_k, f_train.shape[1]) + 1):
            ids = weights[i].topk(k).indices
            clf = LogisticRegression(max_iter=500, class_weight="balanced")
            clf.fit(f_train[:, ids].numpy(), lab_train == letter)
            f1s.append(_f1(clf.decision_function(f_test[:, ids].numpy()) > 0, lab_test == letter))
            if f1s[-1] > best + s.f1_jump and len(main) == k - 1:
                best, main = f1s[-1], ids.tolist()
        out[letter] = KSparse(main, f1s)
    return out


# --------------------------------------------------------------------------------------------- absorption


class WordAbsorption(NamedTuple):
    full: Tensor
    """[n] bool: full absorption."""
    fraction: Tensor
    """[n] absorption fraction in [0, 1]."""


def word_absorption(
    x_proj: Tensor, f: Tensor, cos: Tensor, main: Sequence[int], settings: IclAbsorptionSettings
) -> WordAbsorption:
    """Step 5 for words with probe projections x_proj [n] and latents f [n, m]; cos [m] = cos(W_dec[j], p)."""
    s = settings
    f, cos, x_proj = f.double(), cos.double(), x_proj.double()
    proj = f * cos  # P_j
    main_t = torch.as_tensor(list(main), dtype=torch.long)
    top = proj.argmax(dim=1)
    top_proj = proj.gather(1, top[:, None])[:, 0]
    full = (
        (f[:, main_t].abs() < EPS).all(dim=1)
        & (cos[top] >= s.full_cos_threshold)
        & (x_proj >= 0)
        & (top_proj >= s.min_projection * x_proj)
        & (x_proj != 0)
    )
    candidate = cos >= s.fraction_cos_threshold
    candidate[main_t] = False
    absorber = torch.where(candidate & (proj > 0), proj, torch.zeros_like(proj))
    a_total = absorber.topk(min(s.max_absorbers, proj.shape[1]), dim=1).values.sum(dim=1)
    m = proj[:, main_t].sum(dim=1)
    a = torch.minimum(a_total, x_proj - m)
    partial = (a / (a + m).clamp_min(1e-30)).clamp(0, 1)
    fraction = torch.where(m <= 0, torch.ones_like(m), partial)
    zero = (m >= x_proj) | (a_total < s.min_projection * x_proj) | (x_proj <= 0)
    fraction = torch.where(zero, torch.zeros_like(m), fraction)
    return WordAbsorption(full, fraction)


@dataclass(frozen=True)
class IclAbsorptionResult:
    full_absorption: float
    """Mean over scored letters of full absorptions / probe true positives (nan: fewer than min_letters)."""
    absorption_fraction: float
    """Mean over scored letters of the mean absorption fraction (SAEBench's partial absorption score)."""
    ksparse_f1: float
    """Mean over scored letters of the test F1 of the 1-sparse latent probe."""
    num_split_features: float
    """Mean number of main latents per scored letter."""
    probe_f1: float
    """Mean test F1 of the residual probes over the letters that have one."""
    n_letters: int
    """Letters scored (probe F1 > min_probe_f1 and at least one true positive)."""
    letters: dict[str, dict[str, Any]]
    """Per letter with a probe: probe_f1, ksparse_f1 (k = 1 … max_k), main, n_true_positives, n_full,
    full_rate, fraction, scored."""
    n_train: int
    n_test: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def icl_absorption_score(
    acts: Tensor,
    letters: Sequence[str],
    train: np.ndarray,
    latents: Tensor,
    W_dec: Tensor,
    settings: IclAbsorptionSettings | None = None,
    *,
    probes: dict[str, tuple[np.ndarray, float]] | None = None,
    main_latents: dict[str, list[int]] | None = None,
) -> IclAbsorptionResult:
    """Steps 3–6 from the residuals `acts` [N, d] of the words (first `letters`, `train` mask), the SAE's
    latents [N, m] of them and W_dec [m, d]. `probes` (letter -> (w, b)) and `main_latents` skip the probe
    fits."""
    s = settings or IclAbsorptionSettings()
    n = len(letters)
    if acts.shape[0] != n or latents.shape[0] != n or len(train) != n:
        raise DataError(
            f"absorption_icl: {n} letters for {acts.shape[0]} residuals and {latents.shape[0]} latents"
        )
    lab, train = np.asarray(letters), np.asarray(train, dtype=bool)
    x, f = acts.double(), latents.detach().double()
    x_tr, x_te, f_tr, f_te = x[train], x[~train], f[train], f[~train]
    lab_tr, lab_te = lab[train], lab[~train]
    if probes is None:
        probes = fit_probes(x_tr.numpy(), lab_tr, s)
    if main_latents is None:
        ks = k_sparse_probes(f_tr.float(), lab_tr, f_te.float(), lab_te, sorted(probes), s)
    else:
        ks = {letter: KSparse(list(main), []) for letter, main in main_latents.items()}
    dec_unit = _unit(W_dec.detach().double())
    per: dict[str, dict[str, Any]] = {}
    for letter, (w, b) in sorted(probes.items()):
        w_t = torch.as_tensor(w, dtype=torch.float64)
        is_l = torch.from_numpy(lab_te == letter)
        positive = (x_te @ w_t + b) > 0
        row = {
            "probe_f1": _f1(positive.numpy(), is_l.numpy()),
            "ksparse_f1": ks[letter].f1,
            "main": ks[letter].main,
        }
        tp = positive & is_l
        p = _unit(w_t)
        wa = word_absorption(x_te[tp] @ p, f_te[tp], dec_unit @ p, ks[letter].main, s)
        n_tp = int(tp.sum())
        row.update(
            n_true_positives=n_tp,
            n_full=int(wa.full.sum()),
            full_rate=float(wa.full.double().mean()) if n_tp else math.nan,
            fraction=float(wa.fraction.mean()) if n_tp else math.nan,
            scored=bool(row["probe_f1"] > s.min_probe_f1 and n_tp > 0 and ks[letter].main),
        )
        per[letter] = row
    scored = [r for r in per.values() if r["scored"]]
    ok = len(scored) >= s.min_letters

    def mean(key, get=lambda r, k: r[k]) -> float:
        vals = [get(r, key) for r in scored]
        return float(np.mean(vals)) if ok and vals else math.nan

    return IclAbsorptionResult(
        full_absorption=mean("full_rate"),
        absorption_fraction=mean("fraction"),
        ksparse_f1=mean("ksparse_f1", lambda r, k: r[k][0] if r[k] else math.nan),
        num_split_features=mean("main", lambda r, k: len(r[k])),
        probe_f1=float(np.mean([r["probe_f1"] for r in per.values()])) if per else math.nan,
        n_letters=len(scored),
        letters=per,
        n_train=int(train.sum()),
        n_test=int((~train).sum()),
        settings=asdict(s),
    )
