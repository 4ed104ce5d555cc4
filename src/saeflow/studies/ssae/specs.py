"""Specialised SAEs (SSAE): the generated SAE registry entries and the data-selection step of each subdomain.

For every subdomain listed under ``ssae.subdomains`` (a corpus name) the study

1. selects general-corpus text for it with each method in ``ssae.selections`` (dense, bm25, random; ``domain``
   is the reference: the subdomain's own training text) up to ``ssae.budget_tokens`` -> text set
   ``<subdomain>.sel-<method>`` (results/texts/<subdomain>.sel-<method>.jsonl);
2. finetunes the base GSAE (``ssae.base_sae``) on each selection, once per objective in ``ssae.objectives``
   (name -> TERM tilt; 0 is ERM) and per sparsity setting in ``ssae.sparsity`` (values of
   ``ssae.sparsity_key``: k for TopK-family SAEs, l1_coefficient for ReLU+L1);
3. evaluates each SSAE on the subdomain's and the general corpus's held-out text, and measures tail-concept
   recall on the subdomain (saeflow.studies.ssae.concepts).

The candidate pool of a subdomain = the first ``pool.general_documents`` general training documents + the
subdomain's training documents that are not seeds (the next ``pool.domain_documents``), labels hidden; the
hidden domain documents are the positives of the retrieval precision/recall.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from saeflow.errors import ConfigError, DataError
from saeflow.retrieval import (
    Candidates,
    Selection,
    TokenCounter,
    bm25_select,
    build_index,
    dense_select,
    load_index,
    random_select,
    retrieval_quality,
    take_in_order,
)
from saeflow.sae_spec import finetune_of

log = logging.getLogger(__name__)

RETRIEVAL_METHODS = ("dense", "bm25", "random", "domain")
"""Selections made from the pool directly; `domain` is the reference (the subdomain's own training text), not
a retrieval method."""
TRACIN_SUFFIX = "_tracin"
TRACIN_METHODS = ("dense_tracin", "bm25_tracin")
"""Re-rankings: the base method's top candidates (ssae.tracin.candidates × the budget) ordered by their TracIn
score toward the seeds (saeflow.studies.ssae.tracin), then taken up to the same budget."""
METHODS = RETRIEVAL_METHODS + TRACIN_METHODS
SELECTION_PREFIX = "sel-"
CANDIDATES_PREFIX = "cand-"
SEEDS_SPLIT = "seeds"
CONCEPTS_SPLIT = "concepts"


class SSAEVariant(NamedTuple):
    """One generated SSAE."""

    name: str
    subdomain: str
    selection: str
    objective: str
    tilt: float
    sparsity_key: str
    """The SAE setting swept: k (TopK family) or l1_coefficient (ReLU+L1)."""
    sparsity: float


def _ssae(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("ssae") or {}


def ssae_subdomains(config: dict[str, Any]) -> list[str]:
    return list(_ssae(config).get("subdomains") or [])


def selection_textset(subdomain: str, method: str) -> str:
    return f"{subdomain}.{SELECTION_PREFIX}{method}"


def tracin_base(method: str) -> str | None:
    """The retrieval a TracIn selection re-ranks (dense_tracin -> dense); None for other methods."""
    return method.removesuffix(TRACIN_SUFFIX) if method in TRACIN_METHODS else None


def tracin_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """ssae.tracin with defaults: candidates (× budget_tokens re-ranked), sae (whose snapshots are summed)."""
    cfg = _ssae(config)
    out = {"candidates": 4, "sae": cfg.get("base_sae", "gsae"), **(cfg.get("tracin") or {})}
    if float(out["candidates"]) < 1:
        raise ConfigError(f"ssae.tracin.candidates must be at least 1; got {out['candidates']}")
    return out


def seed_documents(domain_docs: Sequence[dict], n_seeds: int, queries: Sequence[str] | None) -> list[dict]:
    """The seeds of a subdomain as documents: its first `n_seeds` training documents, or the queries."""
    if queries:
        return [{"id": f"query-{i}", "text": str(q)} for i, q in enumerate(queries)]
    return [{"id": str(d["id"]), "text": str(d["text"])} for d in domain_docs[:n_seeds]]


def tracin_rerank(
    candidates: Candidates, candidate_ids: Sequence[str], scores: np.ndarray, budget_tokens: int, method: str
) -> Selection:
    """The re-ranked selection: candidates (ids of `candidates`, the pool) by decreasing TracIn score (a
    candidate without stored tokens, score NaN, comes last) until the budget."""
    index_of = {cid: i for i, cid in enumerate(candidates.ids)}
    missing = [c for c in candidate_ids if c not in index_of]
    if missing:
        raise DataError(
            f"TracIn: candidate '{missing[0]}' is not in the subdomain's pool (stale candidates?)"
        )
    rows = np.array([index_of[c] for c in candidate_ids], dtype=np.int64)
    key = np.where(np.isnan(scores), -np.inf, scores)
    order = rows[np.argsort(-key, kind="stable")]
    full = np.full(len(candidates), np.nan)
    full[rows] = scores
    return take_in_order(order, candidates.tokens, budget_tokens, method, scores=full)


SPARSITY_KEYS = {"k": "k", "l1_coefficient": "l1c"}
"""Sweepable sparsity settings and their tag in SSAE names."""


def sparsity_tag(key: str, value: float) -> str:
    return f"{SPARSITY_KEYS[key]}{int(value) if key == 'k' else format(float(value), 'g')}"


def sparsity_for(config: dict[str, Any], selection: str, objective: str) -> list[float]:
    """Sparsity values (of ssae.sparsity_key) of a variant: ssae.sparsity["<selection>.<objective>"],
    ["<selection>"], ["<objective>"], ["default"].

    An empty list skips the variant (e.g. {"random.term": []}: no TERM SSAE on the random selection).
    """
    table = _ssae(config).get("sparsity") or {}
    for key in (f"{selection}.{objective}", selection, objective, "default"):
        if key in table:
            values = list(table[key])
            if any(v <= 0 for v in values):
                raise ConfigError(f"ssae.sparsity.{key} must be a list of positive numbers; got {values}")
            return values
    raise ConfigError("ssae.sparsity needs a 'default' list of values")


def ssae_variants(config: dict[str, Any]) -> list[SSAEVariant]:
    """Every SSAE of the run, in a stable order (subdomain, selection, objective, sparsity)."""
    subs = ssae_subdomains(config)
    if not subs:
        return []
    cfg = _ssae(config)
    corpora = config.get("corpora") or {}
    general = cfg.get("general_corpus", "general")
    for name in [*subs, general]:
        if name not in corpora:
            raise ConfigError(
                f"ssae: corpus '{name}' is not configured under corpora (known: {', '.join(sorted(corpora))})"
            )
    if general in subs:
        raise ConfigError(f"ssae.subdomains must not contain the general corpus '{general}'")
    bad = [m for m in cfg.get("selections", []) if m not in METHODS]
    if bad:
        raise ConfigError(f"ssae.selections: unknown method(s) {', '.join(bad)}; known: {', '.join(METHODS)}")
    objectives = cfg.get("objectives") or {"erm": 0.0}
    key = cfg.get("sparsity_key", "k")
    if key not in SPARSITY_KEYS:
        raise ConfigError(f"ssae.sparsity_key must be one of {', '.join(SPARSITY_KEYS)}; got '{key}'")
    out = []
    for sub in subs:
        for sel in cfg.get("selections", []):
            for obj, tilt in objectives.items():
                if float(tilt) < 0:
                    raise ConfigError(f"ssae.objectives.{obj}: the tilt must be >= 0; got {tilt}")
                for value in sparsity_for(config, sel, obj):
                    value = int(value) if key == "k" else float(value)
                    out.append(
                        SSAEVariant(
                            f"ssae-{sub}-{sel}-{obj}-{sparsity_tag(key, value)}",
                            sub,
                            sel,
                            obj,
                            float(tilt),
                            key,
                            value,
                        )
                    )
    return out


def ssae_specs(
    config: Mapping[str, Any], defined: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The study's SAEs: the base GSAE's spec, finetuned (init_from) on a selection with a tilt and a
    sparsity."""
    variants = ssae_variants(config)
    if not variants:
        return {}
    cfg = _ssae(config)
    base = cfg.get("base_sae", "gsae")
    finetune = finetune_of(defined, base, cfg.get("finetune"), key="ssae.base_sae")
    if any(v.selection in TRACIN_METHODS for v in variants):
        _check_tracin_sae(config, defined)
    general = cfg.get("general_corpus", "general")
    specs = {}
    for v in variants:
        spec = copy.deepcopy(finetune)
        spec.update(
            train_on=selection_textset(v.subdomain, v.selection),
            tilt=v.tilt,
            eval_sets=[v.subdomain, general],
        )
        # the SSAE table reads our convention only: no SAELens upper pass (≈ 3 s of each evaluation) unless
        # ssae.finetune asks for one
        spec.setdefault("saelens_eval_sets", [])
        spec[v.sparsity_key] = v.sparsity
        specs[v.name] = spec
    return specs


def _check_tracin_sae(config: Mapping[str, Any], defined: Mapping[str, Mapping[str, Any]]) -> None:
    name = tracin_settings(config)["sae"]
    spec = defined.get(name)
    if spec is None:
        raise ConfigError(f"ssae.tracin.sae: '{name}' is not an SAE of this run")
    if spec.get("architecture") != "topk" or not spec.get("snapshots"):
        raise ConfigError(
            f"ssae.selections has a TracIn method: saes.{name} must be a TopK SAE with snapshots (e.g. "
            f"snapshots: 4); got architecture {spec.get('architecture')}, "
            f"snapshots {spec.get('snapshots', 0)}"
        )


def extraction_budget(config: dict[str, Any], textset: str) -> int | None:
    """Token budget of the study's own text sets (selections, concept sets); None for any other text set."""
    corpus, _, split = textset.partition(".")
    if corpus not in ssae_subdomains(config):
        return None
    if split.startswith(SELECTION_PREFIX) or split == SEEDS_SPLIT:
        return int(_ssae(config)["budget_tokens"])
    if split.startswith(CANDIDATES_PREFIX):
        return int(_ssae(config)["budget_tokens"] * float(tracin_settings(config)["candidates"]))
    if split == CONCEPTS_SPLIT:
        return int(_ssae(config)["concepts"]["tokens"])
    return None


def embed_documents_count(config: dict[str, Any], corpus: str) -> int:
    """How many leading training documents of `corpus` the embedding cache holds."""
    cfg = _ssae(config)
    pool = cfg["pool"]
    if corpus == cfg.get("general_corpus", "general"):
        return int(pool["general_documents"])
    if corpus in ssae_subdomains(config):
        return int(cfg["seeds"]) + int(pool["domain_documents"])
    raise ConfigError(f"corpus '{corpus}' is neither the SSAE general corpus nor an ssae subdomain")


def report_rows(config: dict[str, Any], saes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One plain dict per row of the SSAE table: every generated SSAE, then the base GSAE once per subdomain
    (selection "gsae", ERM) with its tilt and sparsity read from the resolved registry `saes`."""
    cfg = config["ssae"]
    base = cfg["base_sae"]
    rows = [v._asdict() for v in ssae_variants(config)]
    for sub in ssae_subdomains(config):
        rows.append(
            {
                "name": base,
                "subdomain": sub,
                "selection": "gsae",
                "objective": "erm",
                "tilt": float(saes[base].get("tilt", 0.0)),
                "sparsity_key": cfg["sparsity_key"],
                "sparsity": saes[base].get(cfg["sparsity_key"]),
            }
        )
    return rows


def ssae_evaluations(config: dict[str, Any], saes: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """{SAE: its table rows' eval sets}: each row's subdomain and the general corpus (the base GSAE is
    defined elsewhere)."""
    general = config["ssae"]["general_corpus"]
    out: dict[str, list[str]] = {}
    for row in report_rows(config, saes):
        out[row["name"]] = list(dict.fromkeys([*out.get(row["name"], []), row["subdomain"], general]))
    return out


# --------------------------------------------------------------------------- the candidate pool


class Pool(NamedTuple):
    """A subdomain's seeds and candidate pool (general documents first, then the hidden domain documents)."""

    seeds: list[dict]
    candidates: Candidates
    n_general: int
    hidden_rows: np.ndarray
    """Rows of the domain documents kept in the pool (rows of the subdomain's embedding cache)."""
    positives: set[str]


def build_pool(
    general_docs: Sequence[dict],
    domain_docs: Sequence[dict],
    *,
    n_general: int,
    n_seeds: int,
    n_hidden: int,
    count_tokens: TokenCounter,
) -> Pool:
    """Seeds = the first `n_seeds` domain training docs; pool = the first `n_general` general docs + the next
    `n_hidden` domain docs (a domain doc whose text also occurs among the general ones is left out)."""
    if n_seeds < 1:
        raise ConfigError(f"ssae.seeds must be at least 1; got {n_seeds}")
    general = list(general_docs[:n_general])
    if len(domain_docs) <= n_seeds:
        raise DataError(
            f"the subdomain has {len(domain_docs)} training documents; need more than {n_seeds} seeds"
        )
    if len(general) < n_general:
        log.warning(
            "the general corpus has only %d training documents (pool.general_documents=%d)",
            len(general),
            n_general,
        )
    general_ids = {str(d["id"]) for d in general}
    window = list(domain_docs[n_seeds : n_seeds + n_hidden])
    rows = np.array(
        [n_seeds + i for i, d in enumerate(window) if str(d["id"]) not in general_ids], dtype=np.int64
    )
    hidden = [domain_docs[r] for r in rows.tolist()]
    candidates = Candidates.from_documents(general + hidden, count_tokens)
    return Pool(list(domain_docs[:n_seeds]), candidates, len(general), rows, {str(d["id"]) for d in hidden})


def run_selection(
    method: str,
    pool: Pool,
    domain_docs: Sequence[dict],
    *,
    budget_tokens: int,
    top_k: int,
    seed: int,
    count_tokens: TokenCounter,
    queries: Sequence[str] | None = None,
    general_index: Any = None,
    domain_embeddings: np.ndarray | None = None,
    embedder: Any = None,
) -> tuple[Selection, Candidates]:
    """Run one selection method on a subdomain's pool; returns the selection and the candidates it indexes."""
    if method not in RETRIEVAL_METHODS:
        raise ConfigError(f"unknown selection method '{method}'; known: {', '.join(RETRIEVAL_METHODS)}")
    seed_texts = list(queries) if queries else [str(d["text"]) for d in pool.seeds]
    if method == "domain":
        own = Candidates.from_documents(list(domain_docs), count_tokens)
        return take_in_order(np.arange(len(own)), own.tokens, budget_tokens, "domain"), own
    if method == "random":
        return random_select(pool.candidates, budget_tokens=budget_tokens, seed=seed), pool.candidates
    if method == "bm25":
        return bm25_select(
            seed_texts, pool.candidates, budget_tokens=budget_tokens, top_k=top_k
        ), pool.candidates
    # dense: the cached general index + an exact index over the hidden domain rows
    if general_index is None or domain_embeddings is None:
        raise ConfigError("dense selection needs the general corpus index and the subdomain embeddings")
    if general_index.ntotal != pool.n_general:
        raise DataError(
            f"the general index holds {general_index.ntotal} rows; the pool has {pool.n_general} "
            "general documents (rebuild the embedding cache)"
        )
    hidden_index = build_index(domain_embeddings[pool.hidden_rows], "flat")
    seed_emb = None if queries else domain_embeddings[: len(pool.seeds)]
    sel = dense_select(
        seed_texts if queries else None,
        pool.candidates,
        budget_tokens=budget_tokens,
        top_k=top_k,
        index=[general_index, hidden_index],
        embedder=embedder,
        seed_embeddings=seed_emb,
    )
    return sel, pool.candidates


def selection_record(
    sel: Selection,
    candidates: Candidates,
    pool: Pool,
    *,
    subdomain: str,
    method: str,
    settings: dict[str, Any],
    seconds: float | None = None,
) -> dict[str, Any]:
    """The JSON sidecar of a selection: stats, retrieval quality (not for `domain`) and per-document scores.

    Deterministic: no wall-clock time (`seconds` is accepted and left out; the rule's benchmark file has
    it)."""
    quality = (
        retrieval_quality(sel, candidates, pool.positives)._asdict()
        if method != "domain"
        else dict.fromkeys(("precision", "recall", "token_precision", "recall_ceiling"))
    )
    records = sel.records(candidates)
    for r in records:
        r["in_domain"] = r["id"] in pool.positives if method != "domain" else True
    return {
        "subdomain": subdomain,
        "method": method,
        "n_documents": len(sel),
        "n_tokens": sel.n_tokens,
        "budget_tokens": sel.budget_tokens,
        "exhausted": sel.exhausted,
        "quality": quality,
        "pool": {
            "general_documents": pool.n_general,
            "domain_documents": len(pool.hidden_rows),
            "seeds": len(pool.seeds),
        },
        "settings": settings,
        "documents": records,
    }


def load_embedding_cache(prefix: str | Path) -> tuple[np.ndarray, Any]:
    """(embeddings, faiss index) written by the embed_corpus rule at <prefix>.npy / <prefix>.faiss."""
    prefix = Path(prefix)
    npy = prefix.with_suffix(".npy")
    if not npy.is_file():
        raise DataError(f"embedding cache {npy} does not exist; run the embed_corpus rule first")
    return np.load(npy), load_index(prefix.with_suffix(".faiss"))


class TiltPoint(NamedTuple):
    tilt: float
    risk: float
    """Mean over minibatches of R_t."""
    position: float
    """(R_t − mean) / (max − mean), averaged over minibatches: 0 = ERM, 1 = the max loss."""
    effective_share: float
    """Effective sample size 1 / Σ w_i² of the softmax(t·ℓ) weights, as a share of the minibatch."""


def tilt_profile(per_token: np.ndarray, tilts: Sequence[float], batch_size: int = 1024) -> list[TiltPoint]:
    """Where TERM's R_t sits between the mean and the max of per-token losses, per tilt, over minibatches.

    Use it to choose a tilt on the loss scale at hand: our per-token loss is the squared error summed over d
    in the normalised space (E‖x‖² = d), so a useful t is of the order of 1 / (spread of the losses).
    """
    import torch

    from saeflow.sae.objectives import tilted_risk

    losses = torch.as_tensor(np.asarray(per_token, dtype=np.float64))
    n = len(losses) // batch_size
    if n == 0:
        raise DataError(
            f"tilt_profile: need at least one minibatch of {batch_size} losses; got {len(losses)}"
        )
    batches = losses[: n * batch_size].reshape(n, batch_size)
    out = []
    for t in tilts:
        risks, pos, ess = [], [], []
        for b in batches:
            r = float(tilted_risk(b, float(t)))
            mean, mx = float(b.mean()), float(b.max())
            w = torch.softmax(float(t) * b, 0) if t > 0 else torch.full_like(b, 1 / len(b))
            risks.append(r)
            pos.append((r - mean) / (mx - mean) if mx > mean else 0.0)
            ess.append(float(1 / (w**2).sum()) / len(b))
        out.append(TiltPoint(float(t), float(np.mean(risks)), float(np.mean(pos)), float(np.mean(ess))))
    return out
