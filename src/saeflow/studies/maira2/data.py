"""radlabels 0.2.0 as data (its code needs old torch/transformers and is never imported or run): 1,000
synthetic MIMIC-style chest X-ray reports, report-level labels for 48 findings, and the alias dictionary; plus
MAIRA-2-style token filtering (section headers, de-identification blanks and report boilerplate out) as
kept-position masks.

Read straight from the wheel (a zip); `aliases.py` is parsed with `ast.literal_eval`, not imported.
"""

from __future__ import annotations

import ast
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from saeflow.errors import DataError

REPORTS_DIR = "radlabels/samples/synthetic_reports/"
LABELS = "radlabels/samples/synthetic_labels.json"
ALIASES = "radlabels/aliases.py"
PRESENT = "definitely present"


@dataclass(frozen=True)
class Report:
    id: str
    text: str
    labels: dict[str, str]
    """finding -> "definitely present" / "uncertain" / "definitely absent" (only findings the report
    mentions)."""


@dataclass(frozen=True)
class Radlabels:
    reports: tuple[Report, ...]
    findings: tuple[str, ...]
    """The findings some report is labelled with (48 in 0.2.0), sorted."""
    aliases: dict[str, list[str]]
    """finding -> phrases that mention it (the package's dictionary, 49 findings)."""
    parents: dict[str, str]
    """finding -> coarse group."""

    def label_matrix(self, present: Sequence[str] = (PRESENT,)) -> np.ndarray:
        """[n_reports, n_findings] bool: the report's label for the finding is one of `present`."""
        col = {f: j for j, f in enumerate(self.findings)}
        y = np.zeros((len(self.reports), len(self.findings)), dtype=bool)
        for i, r in enumerate(self.reports):
            for f, v in r.labels.items():
                if v in present and f in col:
                    y[i, col[f]] = True
        return y

    def documents(self) -> list[dict]:
        """{"id", "text"} per report (the corpus format)."""
        return [{"id": r.id, "text": r.text} for r in self.reports]


def _assigned(tree: ast.Module, name: str):
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        )
        if isinstance(target, ast.Name) and target.id == name and node.value is not None:
            return ast.literal_eval(node.value)
    raise DataError(f"radlabels aliases.py defines no literal {name}")


def read_radlabels(wheel: str | Path) -> Radlabels:
    """Reports (file order by id), labels and aliases from the radlabels wheel (or an unpacked wheel dir)."""
    wheel = Path(wheel)
    if not wheel.exists():
        raise DataError(f"radlabels wheel {wheel} does not exist; run the assets step first")
    if wheel.is_dir():
        files = {str(PurePosixPath(p.relative_to(wheel))): p for p in wheel.rglob("*") if p.is_file()}

        def read(name: str) -> str:
            return files[name].read_text(encoding="utf-8")

        names = list(files)
    else:
        zf = zipfile.ZipFile(wheel)
        names = zf.namelist()

        def read(name: str) -> str:
            return zf.read(name).decode("utf-8")

    missing = [n for n in (LABELS, ALIASES) if n not in names]
    if missing:
        raise DataError(f"{wheel} is not the radlabels 0.2.0 wheel: it lacks {', '.join(missing)}")
    labels = json.loads(read(LABELS))
    report_files = sorted(n for n in names if n.startswith(REPORTS_DIR) and n.endswith(".txt"))
    reports = []
    for name in report_files:
        rid = PurePosixPath(name).stem
        reports.append(Report(rid, read(name), dict(labels.get(rid, {}))))
    if not reports:
        raise DataError(f"{wheel} holds no reports under {REPORTS_DIR}")
    tree = ast.parse(read(ALIASES))
    raw = _assigned(tree, "ALIASES")
    aliases = {k: list(v["aliases"]) for k, v in raw.items()}
    parents = dict(_assigned(tree, "PARENT_MAP"))
    findings = tuple(sorted({f for r in reports for f in r.labels}))
    return Radlabels(tuple(reports), findings, aliases, parents)


# --------------------------------------------------------------------------------------------------
# MAIRA-2-style token filtering
# --------------------------------------------------------------------------------------------------

FILTERS: tuple[tuple[str, str], ...] = (
    # section headers at a line start: "FINDINGS:", "IMPRESSION:", "PA AND LATERAL CHEST RADIOGRAPH:"
    ("header", r"(?m)^[ \t]*[A-Z][A-Z0-9 ,/&()'.-]{1,60}:"),
    ("title", r"FINAL REPORT"),
    # de-identification blanks ("___") and separator rules
    ("deid", r"_{2,}"),
    # list numbers at a line start ("1.")
    ("numbering", r"(?m)^[ \t]*\d{1,2}\.(?=\s)"),
)
"""(reason, regex) pairs; a token overlapping a match is filtered."""


def filter_spans(text: str) -> list[tuple[int, int, str]]:
    """Character spans [start, end) of filtered text, with the filter that matched (first filter wins)."""
    spans = []
    for name, pattern in FILTERS:
        spans += [(m.start(), m.end(), name) for m in re.finditer(pattern, text)]
    return sorted(spans)


def kept_positions(text: str, offsets: Sequence[tuple[int, int]]) -> tuple[np.ndarray, list[str]]:
    """Per token (character offsets from a fast tokenizer): kept?, and why not ("special" for tokens without
    characters, e.g. BOS; "whitespace"; or the filter). A token is dropped when it overlaps a filtered
    span."""
    spans = filter_spans(text)
    keep = np.ones(len(offsets), dtype=bool)
    why = [""] * len(offsets)
    for t, (s, e) in enumerate(offsets):
        if e <= s:
            keep[t], why[t] = False, "special"
            continue
        if not text[s:e].strip():
            keep[t], why[t] = False, "whitespace"
            continue
        for a, b, name in spans:
            if a < e and s < b:
                keep[t], why[t] = False, name
                break
    return keep, why


@dataclass(frozen=True)
class FilterResult:
    masks: dict[str, np.ndarray]
    """doc id -> kept mask over the tokenizer's positions (position 0 = first token, BOS included)."""
    summary: pd.DataFrame
    """One row per reason (kept, special, whitespace, header, ...): tokens and share of all tokens."""


def token_filter(tokenizer, documents: Iterable[dict], max_length: int = 512) -> FilterResult:
    """Kept-position masks of each {"id", "text"} document, tokenised as extraction does (special tokens
    added, truncated to max_length), and a summary of what was filtered and how much remains."""
    masks, counts = {}, Counter()
    for doc in documents:
        enc = tokenizer(doc["text"], truncation=True, max_length=max_length, return_offsets_mapping=True)
        keep, why = kept_positions(doc["text"], enc["offset_mapping"])
        masks[str(doc["id"])] = keep
        counts.update(w or "kept" for w in why)
    total = max(sum(counts.values()), 1)
    summary = pd.DataFrame(
        [
            {"reason": k, "tokens": v, "share": v / total}
            for k, v in sorted(counts.items(), key=lambda x: (x[0] != "kept", -x[1]))
        ]
    )
    return FilterResult(masks, summary)


def write_kept_rows(store, mask, out_dir):
    """The rows of an activation set that `mask` ([n_rows] bool) keeps, as a new activation set in `out_dir`
    (same documents, token ids and positions; what the study's SAE trains on). Returns its manifest. The
    rows are gathered in memory (the study's report sets are ≈ 10⁵ tokens)."""
    import torch

    from saeflow.activations import ActivationWriter

    m = store.manifest
    blocks = list(store.iter_rows(8192))
    cat = {
        k: torch.cat([getattr(b, k) for b in blocks]) for k in ("acts", "token_ids", "doc_index", "position")
    }
    if len(mask) != len(cat["acts"]):
        raise DataError(f"{store.path}: the row mask has {len(mask)} rows, the set {len(cat['acts'])}")
    kept = {k: v[mask] for k, v in cat.items()}
    ids, counts = kept["doc_index"].unique_consecutive(return_counts=True)
    writer = ActivationWriter(
        out_dir,
        model=m.model,
        layer=m.layer,
        d_model=m.d_model,
        shard_rows=max(s.rows for s in m.shards),
        dtype=m.dtype,
    )
    writer.add(
        [m.docs[i] for i in ids.tolist()], kept["acts"], kept["token_ids"], counts.tolist(), kept["position"]
    )
    return writer.finish(
        max_tokens=m.max_tokens,
        max_length=m.max_length,
        batch_size=m.batch_size,
        extra={**m.extra, "filtered_from": str(store.path), "kept": int(mask.sum()), "of": len(mask)},
    )


def row_mask(store, masks: dict[str, np.ndarray]):
    """[n_rows] bool tensor over an activation set: keep a stored row when its document's mask keeps its
    position (documents without a mask keep every row)."""
    import torch

    docs = store.manifest.docs
    out = []
    for block in store.iter_rows(8192):
        keep = torch.ones(len(block.position), dtype=torch.bool)
        for k, (d, p) in enumerate(zip(block.doc_index.tolist(), block.position.tolist(), strict=True)):
            m = masks.get(docs[d])
            if m is not None:
                keep[k] = bool(m[p]) if p < len(m) else True
        out.append(keep)
    return torch.cat(out)
