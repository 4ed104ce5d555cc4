"""results/tables/summary.md: every table a run produced, each next to the papers' numbers
(saeflow.reference)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from saeflow.io import atomic_path
from saeflow.reference import Reference, references_for
from saeflow.studies import all_references

_HEADING = re.compile(r"^(#+)\s+(.*)$")


def _split_title(text: str, fallback: str) -> tuple[str, str]:
    """A table file's first-level heading (if it starts with one) and the rest, headings demoted below
    ours."""
    lines = text.strip("\n").splitlines()
    title = fallback
    if lines and (m := _HEADING.match(lines[0])) and len(m.group(1)) == 1:
        title, lines = m.group(2).strip(), lines[1:]
    body = [f"##{line}" if _HEADING.match(line) else line for line in lines]
    return title, "\n".join(body).strip("\n")


def _reference_block(ref: Reference) -> str:
    table = ref.frame().to_markdown(index=False, floatfmt=".1f")
    note = f"\n\n{ref.note}" if ref.note else ""
    return f"**Paper reference: {ref.title}.** {ref.paper}; {ref.setting}.\n\n{table}{note}"


def summary_markdown(
    tables: Sequence[str | Path], figures: Sequence[str | Path] = (), *, base_dir: str | Path | None = None
) -> str:
    """The summary document. `tables` are Markdown table files (results/tables/<stem>.md), in the order given;
    `figures` are image files linked relative to `base_dir` (the summary's folder)."""
    parts = ["# saeflow results summary", ""]
    if not tables:
        parts += ["No tables were produced by this configuration.", ""]
    used: set[str] = set()
    for path in tables:
        path = Path(path)
        title, body = _split_title(path.read_text(), path.stem)
        parts += [f"## {title}", "", f"Source: `{path.name}`", "", body, ""]
        refs = references_for(path.stem, all_references())
        for ref in refs:
            if ref.key in used:  # each paper table is printed once, beside the first table it belongs to
                parts += [f"Paper reference: {ref.title}, above.", ""]
            else:
                parts += [_reference_block(ref), ""]
                used.add(ref.key)
        if not refs:
            parts += ["No paper reports numbers for this table.", ""]
    if figures:
        parts += ["## Figures", ""]
        for fig in figures:
            rel = os.path.relpath(fig, base_dir) if base_dir is not None else str(fig)
            parts += [f"![{Path(fig).stem}]({rel})", ""]
    unused = [ref for ref in all_references() if ref.key not in used]
    if unused:
        parts += ["## Paper numbers without a table in this run", ""]
        parts += [f"- {ref.title} ({ref.paper}; {ref.setting})" for ref in unused]
        parts.append("")
    return "\n".join(parts)


def write_summary(out: str | Path, tables: Sequence[str | Path], figures: Sequence[str | Path] = ()) -> None:
    out = Path(out)
    text = summary_markdown(tables, figures, base_dir=out.parent)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
