"""Per-residue concepts and their association with SAE latents (or raw neurons).

Concepts come from the sequence and its H/E/C track: helix / strand / coil, helix N-cap and C-cap (the
non-helical residue just before / after a helix run), PROSITE motif matches and a Kyte–Doolittle
transmembrane proxy.

Association, for every latent × concept at activation thresholds on max-normalised latents:
- InterPLM (Simon & Zou 2024): precision over residues (active ∧ concept / active), recall over concept
*domains*
  (contiguous runs; a domain counts when any of its residues is active), F1; (latent, threshold) chosen per
  concept on validation chains and reported on test chains; a concept is covered when its test F1 > 0.5;
- ours (the plm-sae paper's test is unpublished): one-sided Fisher exact test on the 2×2 residue counts
(active vs
  concept), Benjamini–Hochberg over all latent × concept pairs of a threshold.
Counts are matrix products (latents × residues), accumulated over chunks of whole records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import hypergeom

from saeflow.errors import DataError
from saeflow.studies.protein.data import ProteinRecord

THRESHOLDS = (0.0, 0.15, 0.5, 0.6, 0.8)
COVERED_F1 = 0.5

PROSITE = {
    "zinc_finger_c2h2": "C-x(2,4)-C-x(3)-[LIVMFYWC]-x(8)-H-x(3,5)-H",  # PS00028
    "p_loop": "[AG]-x(4)-G-K-[ST]",  # PS00017 ATP/GTP-binding site motif A
    "ef_hand": "D-{W}-[DNS]-{ILVFYW}-[DENSTG]-[DNQGHRK]-{GP}-[LIVMC]-[DENQSTAGC]-x(2)-[DE]",  # PS00018
    "leucine_zipper": "L-x(6)-L-x(6)-L-x(6)-L",  # PS00029
    "cytochrome_c": "C-{CPWHF}-{CPWR}-C-H-{CFYW}",  # PS00190
}
"""PROSITE patterns (accession in the comment) matched as residue-level concepts."""

KYTE_DOOLITTLE = {
    "A": 1.8, "R": -4.5, "N": -3.5, "D": -3.5, "C": 2.5, "Q": -3.5, "E": -3.5, "G": -0.4, "H": -3.2, "I": 4.5,
    "L": 3.8, "K": -3.9, "M": 1.9, "F": 2.8, "P": -1.6, "S": -0.8, "T": -0.7, "W": -0.9, "Y": -1.3, "V": 4.2,
}  # fmt: skip


def prosite_to_regex(pattern: str) -> str:
    """PROSITE syntax (`C-x(2,4)-[LIV]-{P}-H`) → Python regex (`C.{2,4}[LIV][^P]H`); `<`/`>` anchor the
    ends."""
    out = []
    for el in pattern.strip().rstrip(".").split("-"):
        m = re.fullmatch(r"(<?)(x|[A-Z]|\[[A-Z]+>?\]|\{[A-Z]+\})(?:\((\d+)(?:,(\d+))?\))?(>?)", el)
        if m is None:
            raise DataError(f"PROSITE pattern {pattern!r}: cannot parse element {el!r}")
        start, core, lo, hi, end = m.groups()
        core = (
            "." if core == "x" else "[^" + core[1:-1] + "]" if core.startswith("{") else core.replace(">", "")
        )
        rep = "" if lo is None else f"{{{lo}}}" if hi is None else f"{{{lo},{hi}}}"
        out.append(("^" if start else "") + core + rep + ("$" if end else ""))
    return "".join(out)


def motif_mask(sequence: str, pattern: str) -> np.ndarray:
    """[n] bool: residues inside any (possibly overlapping) match of a PROSITE pattern."""
    regex = re.compile(prosite_to_regex(pattern))
    marks = np.zeros(len(sequence), dtype=bool)
    for start in range(len(sequence)):
        m = regex.match(sequence, start)
        if m:
            marks[m.start() : m.end()] = True
    return marks


def hydropathy_tm(sequence: str, window: int = 19, threshold: float = 1.6) -> np.ndarray:
    """[n] bool: residues covered by a `window` whose mean Kyte–Doolittle hydropathy is ≥ `threshold`."""
    kd = np.array([KYTE_DOOLITTLE.get(a, 0.0) for a in sequence])
    marks = np.zeros(len(sequence), dtype=bool)
    if len(sequence) < window:
        return marks
    means = np.convolve(kd, np.ones(window) / window, mode="valid")
    for start in np.nonzero(means >= threshold - 1e-9)[0]:
        marks[start : start + window] = True
    return marks


def residue_concepts(record: ProteinRecord) -> dict[str, np.ndarray]:
    """Every concept of one record: name → [n] bool (secondary structure ones only when it has H/E/C
    labels)."""
    seq, n = record.sequence, len(record.sequence)
    out: dict[str, np.ndarray] = {}
    if record.labels is not None:
        lab = np.array(list(record.labels))
        helix = lab == "H"
        out.update(helix=helix, strand=lab == "E", coil=lab == "C")
        prev_h, next_h = np.r_[False, helix[:-1]], np.r_[helix[1:], False]
        out["helix_ncap"] = ~helix & next_h
        out["helix_ccap"] = ~helix & prev_h
    for name, pattern in PROSITE.items():
        out[name] = motif_mask(seq, pattern)
    out["tm_hydropathy"] = hydropathy_tm(seq)
    assert all(len(v) == n for v in out.values())
    return out


@dataclass(frozen=True)
class ConceptLabels:
    """Concept membership of the residues of several records (concatenated in record order)."""

    names: tuple[str, ...]
    present: np.ndarray
    """[N, C] bool."""
    domain: np.ndarray
    """[N, C] int64: index of the residue's domain (contiguous run) of each concept, -1 outside the
    concept."""
    n_domains: np.ndarray
    """[C] domains per concept."""
    offsets: np.ndarray
    """[R + 1] residue offsets of the records."""

    @classmethod
    def build(
        cls,
        records: Sequence[ProteinRecord],
        names: Sequence[str] | None = None,
        extra: Callable[[ProteinRecord], dict[str, np.ndarray]] | None = None,
    ) -> ConceptLabels:
        per = []
        for rec in records:
            concepts = residue_concepts(rec)
            if extra is not None:
                concepts.update(extra(rec))
            per.append(concepts)
        if names is None:
            names = sorted(set.intersection(*(set(c) for c in per))) if per else []
        missing = [n for n in names if any(n not in c for c in per)]
        if missing:
            raise DataError(
                f"concept(s) {', '.join(missing)} are not defined for every record (H/E/C labels?)"
            )
        present = np.concatenate([np.stack([c[n] for n in names], axis=1) for c in per]).astype(bool)
        offsets = np.cumsum([0] + [len(r.sequence) for r in records])
        starts = present.copy()
        starts[1:] &= ~present[:-1]
        firsts = offsets[:-1][offsets[:-1] < len(present)]
        starts[firsts] = present[firsts]  # a run never continues across records
        run = np.cumsum(starts, axis=0) - 1
        domain = np.where(present, run, -1)
        return cls(tuple(names), present, domain, starts.sum(axis=0), offsets)

    def __len__(self) -> int:
        return len(self.present)


@dataclass(frozen=True)
class ConceptScores:
    """Counts and InterPLM scores of every threshold × latent × concept."""

    thresholds: tuple[float, ...]
    names: tuple[str, ...]
    n_residues: int
    tp: np.ndarray
    """[T, L, C] residues active and in the concept."""
    n_active: np.ndarray
    """[T, L] residues where the latent is active (> threshold)."""
    n_concept: np.ndarray
    """[C] residues in the concept."""
    domains_hit: np.ndarray
    """[T, L, C] concept domains with at least one active residue."""
    n_domains: np.ndarray
    """[C]."""

    @property
    def precision(self) -> np.ndarray:
        return self.tp / np.maximum(self.n_active, 1)[..., None]

    @property
    def recall(self) -> np.ndarray:
        return self.domains_hit / np.maximum(self.n_domains, 1)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)

    def fisher_p(self) -> np.ndarray:
        """[T, L, C] one-sided (enrichment) Fisher exact p-values of the 2×2 tables."""
        return fisher_greater(self.tp, self.n_active[..., None], self.n_concept, self.n_residues)

    def fisher_q(self) -> np.ndarray:
        """[T, L, C] Benjamini–Hochberg q-values over all latent × concept pairs of each threshold (our
        choice)."""
        p = self.fisher_p()
        return np.stack([benjamini_hochberg(p[t].ravel()).reshape(p[t].shape) for t in range(len(p))])


def fisher_greater(tp, n_active, n_concept, n_total) -> np.ndarray:
    """One-sided Fisher exact p = P(X ≥ tp), X ~ Hypergeometric(N=n_total, K=n_concept, n=n_active)."""
    return hypergeom.sf(np.asarray(tp) - 1, n_total, n_concept, n_active)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH q-values (monotone, capped at 1) of a 1-d array of p-values."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def _record_chunks(offsets: np.ndarray, chunk_rows: int) -> Iterable[tuple[int, int]]:
    start = 0
    while start < len(offsets) - 1:
        stop = start + 1
        while stop < len(offsets) - 1 and offsets[stop + 1] - offsets[start] <= chunk_rows:
            stop += 1
        yield int(offsets[start]), int(offsets[stop])
        start = stop


@torch.inference_mode()
def concept_scores(
    acts: torch.Tensor | Callable[[int, int], torch.Tensor],
    labels: ConceptLabels,
    scale: torch.Tensor,
    thresholds: Sequence[float] = THRESHOLDS,
    chunk_rows: int = 65536,
) -> ConceptScores:
    """Counts for every threshold × latent × concept.

    acts: [N, L] activations (latents or neurons) of `labels`' residues, or a function (start, stop) → rows.
    scale: [L] per-latent maxima (from training chains) that normalise activations; a latent is active at a
    residue when act / scale > threshold (a latent with scale ≤ 0 is never active).
    """
    if not callable(acts) and len(acts) != len(labels):
        raise DataError(
            f"concept_scores: {len(acts)} activation rows for {len(labels)} labelled residues (build the "
            "labels from extract.select_records so they align with the stored rows)"
        )
    get = acts if callable(acts) else (lambda a, b: acts[a:b])
    scale = scale.float()
    inv = torch.where(scale > 0, 1 / scale.clamp_min(1e-12), torch.zeros_like(scale))
    T, L, C = len(thresholds), len(scale), len(labels.names)
    tp, hits, n_active = torch.zeros(T, L, C), torch.zeros(T, L, C), torch.zeros(T, L)
    present_all = torch.from_numpy(labels.present)
    for a, b in _record_chunks(labels.offsets, chunk_rows):
        norm = get(a, b).float() * inv
        present = present_all[a:b].float()
        domain = labels.domain[a:b]
        for t, thr in enumerate(thresholds):
            active = ((norm > thr) & (inv > 0)).float()
            tp[t] += active.T @ present
            n_active[t] += active.sum(dim=0)
            for c in range(C):
                rows = np.nonzero(domain[:, c] >= 0)[0]
                if len(rows) == 0:
                    continue
                local = torch.from_numpy(domain[rows, c] - domain[rows, c].min())
                per_domain = torch.zeros(int(local.max()) + 1, L).index_add_(0, local, active[rows])
                hits[t, :, c] += (per_domain > 0).sum(dim=0).float()
    return ConceptScores(
        tuple(float(t) for t in thresholds),
        labels.names,
        len(labels),
        tp.numpy().astype(np.int64),
        n_active.numpy().astype(np.int64),
        labels.present.sum(axis=0),
        hits.numpy().astype(np.int64),
        labels.n_domains,
    )


def best_per_concept(val: ConceptScores, test: ConceptScores) -> pd.DataFrame:
    """Per concept: the (latent, threshold) with the best validation F1, scored on test; covered = test F1 >
    0.5. A concept without validation domains gets an arbitrary pick (val_f1 0): read `val_domains` beside
    it."""
    f1_val, f1_test = val.f1, test.f1
    rows = []
    for c, name in enumerate(val.names):
        t, latent = np.unravel_index(np.argmax(f1_val[:, :, c]), f1_val[:, :, c].shape)
        rows.append({
            "concept": name, "latent": int(latent), "threshold": val.thresholds[t],
            "val_f1": f1_val[t, latent, c],
            "test_precision": test.precision[t, latent, c], "test_recall": test.recall[t, latent, c],
            "test_f1": f1_test[t, latent, c], "covered": bool(f1_test[t, latent, c] > COVERED_F1),
            "val_domains": int(val.n_domains[c]), "test_domains": int(test.n_domains[c]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def latent_table(val: ConceptScores, test: ConceptScores) -> pd.DataFrame:
    """Per latent: its best concept and threshold (validation F1), test F1, Fisher q-value (test, that
    threshold) and activation frequency (test residues active at that threshold)."""
    f1_val = val.f1
    q = test.fisher_q()
    flat = f1_val.transpose(1, 0, 2).reshape(f1_val.shape[1], -1)
    best = flat.argmax(axis=1)
    t_idx, c_idx = np.unravel_index(best, (f1_val.shape[0], f1_val.shape[2]))
    lat = np.arange(f1_val.shape[1])
    return pd.DataFrame({
        "latent": lat, "concept": [val.names[c] for c in c_idx], "threshold": np.array(val.thresholds)[t_idx],
        "val_f1": f1_val[t_idx, lat, c_idx], "test_f1": test.f1[t_idx, lat, c_idx],
        "q_value": q[t_idx, lat, c_idx],
        "frequency": test.n_active[t_idx, lat] / max(test.n_residues, 1),
    })  # fmt: skip


def annotate_sequence(
    sequence: str,
    acts: torch.Tensor,
    scale: torch.Tensor,
    latents: pd.DataFrame,
    *,
    min_f1: float = COVERED_F1,
) -> pd.DataFrame:
    """One row per residue: position, residue, its active latents (act / scale > the latent's threshold) and
    the concepts of those latents whose validation F1 ≥ `min_f1` (from `latent_table`)."""
    if len(acts) != len(sequence):
        raise DataError(f"annotate_sequence: {len(acts)} activation rows for {len(sequence)} residues")
    thr = torch.tensor(latents["threshold"].to_numpy(dtype=np.float32, copy=True))
    norm = acts.float() / scale.float().clamp_min(1e-12)
    active = (norm > thr) & (scale > 0)
    good = set(latents.index[latents["val_f1"] >= min_f1])
    rows = []
    for i, res in enumerate(sequence):
        ids = active[i].nonzero().squeeze(1).tolist()
        ids.sort(key=lambda j: -float(norm[i, j]))
        rows.append(
            {
                "position": i,
                "residue": res,
                "latents": " ".join(map(str, ids)),
                "concepts": " ".join(sorted({latents.at[j, "concept"] for j in ids if j in good})),
            }
        )
    return pd.DataFrame(rows)
