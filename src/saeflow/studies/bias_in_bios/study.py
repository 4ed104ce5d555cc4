"""Glue of the Bias-in-Bios study: config → sets and probe settings, set and array files, the SSAE's data
selection, and the result tables (ours beside the paper's reference numbers). Its registry entries (the bias
SSAE, the SAEs compared) are in saeflow.studies.bias_in_bios.specs, which the workflow imports cheaply."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from saeflow.errors import DataError
from saeflow.io import atomic_path, read_jsonl, write_jsonl
from saeflow.studies.bias_in_bios.data import (
    BiasSets,
    BiosSource,
    MaskSpec,
    SetSizes,
    build_sets,
    group_counts,
    prepare_pool,
    read_bios,
)
from saeflow.studies.bias_in_bios.debias import (
    ATTRIBUTIONS,
    BOOTSTRAP_RESAMPLES,
    LabelledSet,
    ShiftConfig,
)

SET_NAMES = ("ambiguous", "test", "oracle")
TABLE_COLUMNS = ["method", "profession_acc", "gender_acc", "worst_group_acc", "gender_probe_acc"]
SCR_COLUMNS = [
    "sae",
    "method",
    "n",
    "n_ablated",
    "scr",
    "scr_worst_group",
    "profession_acc",
    "worst_group_acc",
    "gender_acc",
    "gender_probe_acc",
]

PAPER_LABEL = "paper (Pythia-70M, professor/nurse)"
PAPER_KEY = "ssae_shift_pythia"
"""saeflow.reference entry: SSAE paper Table 1 (Pythia-70M-deduped, professor vs nurse, balanced-set accuracy
%). Its Gender column is the classifier's accuracy at predicting gender (our gender_acc)."""


def paper_reference() -> dict[str, tuple[float, float, float]]:
    """method -> (profession, gender, worst-group) in % as the paper reports them."""
    from saeflow.studies.bias_in_bios.references import REFERENCES

    ref = next(r for r in REFERENCES if r.key == PAPER_KEY)
    return {row[0]: tuple(row[1:4]) for row in ref.rows}


# --------------------------------------------------------------------------- config


def study_sizes(bib: Mapping[str, Any]) -> SetSizes:
    return SetSizes(
        int(bib["ambiguous_per_profession"]), int(bib["test_per_group"]), int(bib["oracle_per_group"])
    )


def shift_config(bib: Mapping[str, Any], seed: int) -> ShiftConfig:
    """ShiftConfig from the config section; its seed is bias_in_bios.seed, else the global seed."""
    own = bib.get("seed")
    return ShiftConfig.from_dict({**bib, "seed": int(seed if own is None else own)})


# --------------------------------------------------------------------------- sets


def make_sets(
    bib: Mapping[str, Any], seed: int, resources_dir: str | Path
) -> tuple[BiasSets, dict[str, Any]]:
    """Read the configured bios and draw the three sets; also return a JSON-ready record of the counts."""
    source = BiosSource.from_dict(bib["data"])
    bios = read_bios(source, resources_dir, professions=bib["professions"])
    mask = MaskSpec.from_dict(bib.get("mask"))
    pool = prepare_pool(bios, bib["professions"], mask, int(bib.get("min_chars", 20)))
    sets = build_sets(pool, study_sizes(bib), seed)
    record = {
        "source": source.path, "schema": str(bios["schema"].iloc[0]) if len(bios) else None,
        "professions": {"A": bib["professions"][0], "B": bib["professions"][1]},
        "masked": mask.applies_to(str(bios["schema"].iloc[0])) if len(bios) else False,
        "pool": group_counts(pool), "sets": sets.stats(), "seed": seed,
    }  # fmt: skip
    return sets, record


def write_set(path: str | Path, frame: pd.DataFrame) -> None:
    write_jsonl(path, frame[["id", "text", "profession", "gender", "label", "group"]].to_dict("records"))


def read_set(path: str | Path) -> pd.DataFrame:
    frame = pd.DataFrame(list(read_jsonl(path)))
    if frame.empty:
        raise DataError(f"{path}: empty set")
    return frame


def save_arrays(path: str | Path, **arrays: np.ndarray | torch.Tensor) -> None:
    tensors = {k: torch.as_tensor(v, dtype=torch.float32).contiguous() for k, v in arrays.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
        tmp.chmod(0o644)  # safetensors creates the file private (0600)


def load_array(path: str | Path, key: str) -> np.ndarray:
    return load_file(str(path))[key].double().numpy()


def labelled(frame: pd.DataFrame, x: np.ndarray) -> LabelledSet:
    if len(frame) != len(x):
        raise DataError(f"set has {len(frame)} rows but its pooled activations {len(x)}")
    return LabelledSet(
        np.asarray(x, dtype=np.float64),
        frame.label.to_numpy(int),
        frame.gender.to_numpy(str),
        frame.group.to_numpy(str),
    )


# --------------------------------------------------------------------------- tables


def main_table(baseline: list[dict], shifts: list[dict]) -> pd.DataFrame:
    """Rows: Original, Random ablation (first SAE) ± retrain, each SAE's SHIFT ± retrain, Oracle."""
    by_method = {r["method"]: r for r in baseline}
    rows = [by_method["Original"]]
    if shifts:
        rows += [r for r in shifts[0]["rows"] if r["method"].startswith("Random ablation")]
    for result in shifts:
        rows += [r for r in result["rows"] if not r["method"].startswith("Random ablation")]
    rows.append(by_method["Oracle"])
    df = pd.DataFrame(rows)
    extra = [c for c in ("worst_group_ci_low", "worst_group_ci_high", "n_ablated") if c in df.columns]
    groups = sorted(c for c in df.columns if c.startswith("acc_"))
    sizes = sorted(c for c in df.columns if c.startswith("n_") and c != "n_ablated")
    return df[TABLE_COLUMNS + extra + groups + sizes]


def scr_table(shifts: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([r for result in shifts for r in result["scr"]])
    if df.empty:
        return pd.DataFrame(columns=SCR_COLUMNS)
    return df[SCR_COLUMNS].sort_values(["sae", "method", "n"], kind="stable").reset_index(drop=True)


def _pct(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _attribution_order(method: str) -> int:
    """Position of an attribution in ATTRIBUTIONS (JSON files may store them sorted by name)."""
    return list(ATTRIBUTIONS).index(method) if method in ATTRIBUTIONS else len(ATTRIBUTIONS)


def gap_note(shifts: list[dict]) -> str:
    """One line: how much of the Original probe's gender signal each SAE's latents carry (vs its error
    term)."""
    parts = []
    for s in shifts:
        g = s.get("gender_gap") or {}
        if g.get("total"):
            by_method = s.get("attributions") or {"linear": {"latents": s["latents"], "gender_gap": g}}
            removed = [
                f"the {len(a['latents'])} ablated latents{ATTRIBUTIONS.get(m, f' ({m})')} "
                f"{100 * a['gender_gap']['removed'] / g['total']:.0f}%"
                for m, a in sorted(by_method.items(), key=lambda kv: _attribution_order(kv[0]))
            ]
            parts.append(
                f"{s['label']}: latents {100 * g['latents'] / g['total']:.0f}%, error term "
                f"{100 * g['error'] / g['total']:.0f}%, " + ", ".join(removed)
            )
    if not parts:
        return ""
    return (
        "Where the Original probe's gender signal (its female − male logit gap on the balanced set) lives; "
        "SHIFT "
        "keeps the SAE error term, so it can remove at most the latents' part: " + "; ".join(parts) + ". "
        "The shares are signed parts of one sum: a negative share pushes the gap the other way (towards "
        "male), so it offsets the other part, which then exceeds 100%."
    )


def _worst_cell(r: Mapping[str, Any]) -> str:
    cell = _pct(r["worst_group_acc"])
    lo, hi = r.get("worst_group_ci_low"), r.get("worst_group_ci_high")
    if cell and lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        cell += f" [{_pct(lo)}, {_pct(hi)}]"
    return cell


def group_sizes_note(df: pd.DataFrame, record: Mapping[str, Any]) -> str:
    """One line: the balanced test set's group sizes and what one bio is worth, and what the brackets mean."""
    sizes = {
        c.removeprefix("n_"): df[c].dropna() for c in df.columns if c.startswith("n_") and c != "n_ablated"
    }
    sizes = {g: int(v.iloc[0]) for g, v in sizes.items() if len(v)}
    if not sizes:
        sizes = {g: int(n) for g, n in ((record.get("sets") or {}).get("test") or {}).items()}
    if not sizes:
        return ""
    order = ("A/M", "A/F", "B/M", "B/F")
    sizes = dict(sorted(sizes.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    names = {"A": record["professions"]["A"], "B": record["professions"]["B"]}
    parts = ", ".join(
        f"{names.get(g.split('/')[0], g.split('/')[0])}/{g.split('/')[1]} {n}" for g, n in sizes.items()
    )
    step = 100 / min(sizes.values())
    return (
        f"Test bios per group: {parts} (one bio moves a group's accuracy by {step:.1f} points). Worst-group "
        f"[brackets]: 95% bootstrap interval ({BOOTSTRAP_RESAMPLES} resamples of the test bios within each "
        "group)."
    )


def paper_row(
    method: str, methods: set[str], reference: Mapping[str, tuple[float, float, float]]
) -> tuple[float, float, float] | None:
    """The paper's numbers for one of our rows. The paper's SHIFT uses integrated gradients, so its SHIFT rows
    go beside our "... SHIFT (IG)" rows; beside the linear-attribution rows only when the table has no IG
    rows."""
    ig = f" SHIFT{ATTRIBUTIONS['ig']}"
    if ig in method:
        return reference.get(method.replace(ig, " SHIFT"))
    if " SHIFT" in method and method.replace(" SHIFT", ig) in methods:
        return None
    return reference.get(method)


def markdown_table(
    df: pd.DataFrame, record: Mapping[str, Any], model: str, layer: int, n_latents: int, note: str = ""
) -> str:
    """Our numbers (%) with the paper's reference numbers in separate, labelled columns."""
    lines = [
        "# Bias in Bios: SHIFT with general vs specialized SAEs",
        "",
        (
            f"Ours: {model}, layer {layer}, {record['professions']['A']} vs {record['professions']['B']} "
            f"({record['source']}{', profession words masked' if record.get('masked') else ''}); "
            f"balanced-test accuracy in %, {n_latents} latents ablated. "
            "Gender = the profession classifier scored against gender (A↔male, B↔female), the papers' "
            "definition; gender probe = a gender probe retrained on the (ablated) representation (k-fold CV "
            "on the balanced test set): how much gender is still linearly readable."
        ),
        f"The {PAPER_LABEL} columns are the SSAE paper's Table 1 on its own model and data, not our run.",
        *([sizes] if (sizes := group_sizes_note(df, record)) else []),
        *([note] if note else []),
        "",
    ]
    header = [
        "method",
        "profession ↑",
        "gender ↓",
        "worst-group ↑",
        "gender probe ↓",
        f"{PAPER_LABEL}: profession",
        f"{PAPER_LABEL}: gender",
        f"{PAPER_LABEL}: worst-group",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    reference = paper_reference()
    methods = set(df.method)
    for r in df.to_dict("records"):
        paper = paper_row(r["method"], methods, reference)
        ours = [
            r["method"],
            _pct(r["profession_acc"]),
            _pct(r["gender_acc"]),
            _worst_cell(r),
            _pct(r["gender_probe_acc"]),
        ]
        cells = ours + ([f"{v:.1f}" for v in paper] if paper else ["", "", ""])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- SSAE data selection


def retrieve_for_bios(
    seed_texts: list[str],
    general_docs: list[dict],
    general_index: Any,
    embedder: Any,
    count_tokens: Any,
    *,
    budget_tokens: int,
    top_k: int,
) -> tuple[Any, Any]:
    """Dense retrieval (saeflow.retrieval.dense_select) from the cached general-corpus index, seeded with
    bios.

    The index rows are the first `general_index.ntotal` general training documents (the embed_corpus cache).
    Returns (Selection, Candidates).
    """
    from saeflow.retrieval import Candidates, dense_select

    n = general_index.ntotal
    if len(general_docs) < n:
        raise DataError(
            f"the general index holds {n} rows but the corpus has only {len(general_docs)} documents"
        )
    candidates = Candidates.from_documents(general_docs[:n], count_tokens)
    sel = dense_select(
        seed_texts,
        candidates,
        budget_tokens=budget_tokens,
        top_k=top_k,
        index=general_index,
        embedder=embedder,
    )
    return sel, candidates
