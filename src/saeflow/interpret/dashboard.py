"""Static feature dashboards: one self-contained HTML site per SAE (an index + pages of `per_page` latents).

Offline: inline CSS/JS/SVG, no CDN. Per latent: explanation and scores, frequency, activation histogram
(inline SVG), top and quantile contexts with tokens shaded by activation, the output tokens its decoder
direction promotes and suppresses through the unembedding, and links to latents with near-identical decoder
directions. The index holds a table of all latents, sortable by score / frequency by clicking a column header.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from saeflow.interpret.examples import Decode, Example, latent_examples
from saeflow.interpret.explainers import Explanation
from saeflow.io import atomic_path
from saeflow.latents import LatentActivations


@dataclass(frozen=True)
class LogitEffects:
    """Per latent the k output tokens its unit decoder direction raises / lowers most through W_U."""

    top_ids: Tensor
    top_values: Tensor
    bottom_ids: Tensor
    bottom_values: Tensor


@torch.no_grad()
def logit_effects(W_dec: Tensor, W_U: Tensor, k: int = 10, chunk: int = 256) -> LogitEffects:
    """`W_dec` [m, d] decoder rows (normalised here), `W_U` [V, d] unembedding; the final norm is not applied
    (a direction's effect up to its per-token scale)."""
    d = W_dec.float() / W_dec.float().norm(dim=1, keepdim=True).clamp_min(1e-8)
    k = min(k, W_U.shape[0])
    parts = []
    for s in range(0, len(d), chunk):
        logits = d[s : s + chunk] @ W_U.float().T
        parts.append((torch.topk(logits, k, dim=1), torch.topk(logits, k, dim=1, largest=False)))
    return LogitEffects(
        torch.cat([p[0].indices for p in parts]),
        torch.cat([p[0].values for p in parts]),
        torch.cat([p[1].indices for p in parts]),
        torch.cat([p[1].values for p in parts]),
    )


@torch.no_grad()
def near_duplicates(
    W_dec: Tensor, threshold: float = 0.9, max_links: int = 5, chunk: int = 512
) -> list[list]:
    """For each latent, up to `max_links` (other latent, cosine) with decoder cosine > threshold, best
    first."""
    d = W_dec.float() / W_dec.float().norm(dim=1, keepdim=True).clamp_min(1e-8)
    out: list[list] = []
    k = min(max_links + 1, len(d))
    for s in range(0, len(d), chunk):
        cos = d[s : s + chunk] @ d.T
        cos[torch.arange(len(cos)), torch.arange(s, s + len(cos))] = -2.0
        vals, idx = torch.topk(cos, k, dim=1)
        for v, i in zip(vals.tolist(), idx.tolist(), strict=True):
            out.append([(j, round(c, 4)) for c, j in zip(v, i, strict=True) if c > threshold][:max_links])
    return out


@dataclass(frozen=True)
class Dashboard:
    index: Path
    pages: tuple[Path, ...]


CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}
.latent{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:1em 0}
.ctx{font-family:monospace;white-space:pre-wrap;margin:.15em 0;font-size:.9em}
.ctx span{border-radius:2px}.c{outline:1px solid #333}.meta{color:#555;font-size:.9em}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.2em .5em;text-align:left}
th{cursor:pointer;background:#f4f4f4}.pos{color:#1a7f37}.neg{color:#b42318}nav a{margin-right:.5em}"""

SORT_JS = """function sortBy(t,c){const b=t.tBodies[0],r=[...b.rows],d=t.dataset.dir==c?-1:1;\
t.dataset.dir=d==1?c:'';
r.sort((x,y)=>{const a=x.cells[c].dataset.v??x.cells[c].textContent,\
z=y.cells[c].dataset.v??y.cells[c].textContent;
const p=parseFloat(a),q=parseFloat(z);return d*(isNaN(p)||isNaN(q)?a.localeCompare(z):q-p);});
r.forEach(e=>b.appendChild(e));}"""


def _page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}{js}</body></html>\n"
    )


def histogram_svg(counts: Sequence[int], max_value: float, width: int = 240, height: int = 60) -> str:
    """Bars of log(1 + count) over (0, max_value]."""
    n = max(len(counts), 1)
    top = max((math.log1p(c) for c in counts), default=0.0) or 1.0
    w = width / n
    bars = "".join(
        f"<rect x='{i * w:.1f}' y='{height - math.log1p(c) / top * height:.1f}' width='{max(w - 1, 1):.1f}' "
        f"height='{math.log1p(c) / top * height:.1f}' fill='#d9534f'><title>{c}</title></rect>"
        for i, c in enumerate(counts)
    )
    return (
        f"<svg width='{width}' height='{height + 14}' role='img' aria-label='activation histogram'>{bars}"
        f"<text x='0' y='{height + 12}' font-size='10'>0</text><text x='{width}' y='{height + 12}' "
        f"font-size='10' text-anchor='end'>{max_value:.3g}</text></svg>"
    )


def render_context(example: Example, scale: float) -> str:
    """Tokens as spans shaded by activation / scale (HTML-escaped); the centre token outlined."""
    spans = []
    for i, (tok, a) in enumerate(zip(example.tokens, example.acts, strict=True)):
        alpha = 0.0 if scale <= 0 else max(0.0, min(1.0, a / scale))
        cls = " class='c'" if i == example.centre else ""
        spans.append(
            f"<span{cls} style='background:rgba(217,83,79,{alpha:.2f})' title='{a:.3g}'>"
            f"{html.escape(tok)}</span>"
        )
    return f"<div class='ctx'>{''.join(spans)}</div>"


def _fmt(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def write_dashboard(
    out_dir: str | Path,
    name: str,
    acts: LatentActivations,
    decode: Decode,
    *,
    explanations: Mapping[int, Explanation] | None = None,
    scores: pd.DataFrame | None = None,
    effects: LogitEffects | None = None,
    duplicates: Sequence[Sequence] | None = None,
    latents: Sequence[int] | None = None,
    per_page: int = 100,
    n_shown: int = 8,
) -> Dashboard:
    """Write `index.html` and `page_XXX.html` for `latents` (default: all latents that ever fire)."""
    out_dir = Path(out_dir)
    explanations = explanations or {}
    chosen = list(latents) if latents is not None else [i for i in range(acts.d_sae) if acts.frequency[i] > 0]
    by_latent: dict[int, dict] = {}
    if scores is not None and len(scores):
        for r in scores.itertuples(index=False):
            by_latent.setdefault(int(r.latent), {})[r.scorer] = (
                r.balanced_accuracy if r.scorer != "embedding" else r.auroc
            )
    scorer_names = sorted({s for v in by_latent.values() for s in v})
    page_of = {lat: i // per_page for i, lat in enumerate(chosen)}
    pages = []
    for p in range(0, max(len(chosen), 1), per_page):
        cards = []
        for lat in chosen[p : p + per_page]:
            ex = latent_examples(acts, lat, decode)
            scale = float(acts.max_value[lat])
            expl = explanations.get(lat)
            sc = (
                ", ".join(f"{s} {_fmt(v)}" for s, v in sorted(by_latent.get(lat, {}).items())) or "not scored"
            )
            parts = [
                f"<div class='latent' id='l{lat}'><h2>Latent {lat}</h2>",
                f"<p><b>{html.escape(expl.text) if expl else '(no explanation)'}</b></p>",
                f"<p class='meta'>frequency {acts.frequency[lat]:.3g} · max {scale:.3g} · scores: {sc}</p>",
                histogram_svg(acts.histogram[lat].tolist(), scale),
            ]
            if effects is not None:
                pos = " ".join(
                    f"<span class='pos'>{html.escape(t)}</span>"
                    for t in decode(effects.top_ids[lat].tolist())
                )
                neg = " ".join(
                    f"<span class='neg'>{html.escape(t)}</span>"
                    for t in decode(effects.bottom_ids[lat].tolist())
                )
                parts.append(f"<p class='meta'>promotes: {pos}<br>suppresses: {neg}</p>")
            if duplicates is not None and duplicates[lat]:
                links = " ".join(
                    f"<a href='page_{page_of[j]:03d}.html#l{j}'>{j}</a> ({c:.2f})"
                    if j in page_of
                    else f"{j} ({c:.2f})"
                    for j, c in duplicates[lat]
                )
                parts.append(f"<p class='meta'>near-identical decoder directions: {links}</p>")
            parts.append(
                "<h3>Top activations</h3>" + "".join(render_context(e, scale) for e in ex.train[:n_shown])
            )
            parts.append(
                "<h3>Across the activation range</h3>"
                + "".join(render_context(e, scale) for e in ex.test_active[:n_shown])
            )
            cards.append("".join(parts) + "</div>")
        nav = "<nav><a href='index.html'>index</a></nav>"
        path = out_dir / f"page_{p // per_page:03d}.html"
        pages.append((path, _page(f"{name} latents {p}–{p + per_page - 1}", nav + "".join(cards))))
    head = "".join(
        f"<th onclick='sortBy(this.closest(\"table\"),{i})'>{h}</th>"
        for i, h in enumerate(["latent", "explanation", "frequency", *scorer_names])
    )
    rows = []
    for lat in chosen:
        expl = explanations.get(lat)
        cells = [
            f"<td data-v='{lat}'><a href='page_{page_of[lat]:03d}.html#l{lat}'>{lat}</a></td>",
            f"<td>{html.escape(expl.text[:120]) if expl else ''}</td>",
            f"<td data-v='{float(acts.frequency[lat]):.6g}'>{float(acts.frequency[lat]):.3g}</td>",
        ]
        cells += [
            f"<td data-v='{_fmt(by_latent.get(lat, {}).get(s))}'>{_fmt(by_latent.get(lat, {}).get(s))}</td>"
            for s in scorer_names
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = (
        f"<h1>{html.escape(name)}</h1><p class='meta'>{len(chosen)} latents of {acts.d_sae}, "
        f"{acts.n_rows} tokens; click a column to sort.</p><table><thead><tr>{head}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in pages:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    index = out_dir / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(_page(name, body, SORT_JS), encoding="utf-8")
    return Dashboard(index, tuple(p for p, _ in pages))


def write_site_index(path: str | Path, dashboards: Mapping[str, str | Path]) -> Path:
    """One page linking each SAE's dashboard (name -> its index.html, linked relative to `path`)."""
    path = Path(path)
    items = "".join(
        f"<li><a href='{html.escape(str(Path(p).resolve().relative_to(path.parent.resolve())))}'>"
        f"{html.escape(n)}</a></li>"
        for n, p in sorted(dashboards.items())
    )
    with atomic_path(path) as tmp:
        tmp.write_text(_page("SAE dashboards", f"<h1>SAE dashboards</h1><ul>{items}</ul>"), encoding="utf-8")
    return path
