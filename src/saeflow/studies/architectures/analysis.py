"""The architecture study: one SAE per architecture at matched L0, their table, the decoder-geometry figure,
and the orthogonality-penalty cost benchmark (`python -m saeflow.bench ortho`).

The specs themselves are generated in :mod:`saeflow.studies.architectures.specs` (pure Python, imported by
the workflow).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch

from saeflow.io import atomic_path, read_json
from saeflow.tables import read_sae_columns

ARCHITECTURE_COLUMNS = [
    "architecture",
    "sae",
    "eval_set",
    "l0",
    "fvu",
    "delta_ce",
    "mean_max_cos",
    "distinct_fraction",
    "absorption",
    "saebench_full_absorption",
    "saebench_absorption_fraction",
    "saebench_ksparse_f1",
    "dead_fraction",
    "l1_coefficient",
]


# --------------------------------------------------------------------------------------------- tables, figure


def architectures_table(rows: Iterable[Mapping[str, Any]], extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """One row per architecture × eval set, from dicts holding the evaluation row plus `architecture` and the
    SAE's analysis (mean_max_cos, distinct_fraction, absorption); `extra_columns` (e.g. the per-SAE columns
    other studies publish) follow the table's own."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=ARCHITECTURE_COLUMNS)
    cols = [c for c in [*ARCHITECTURE_COLUMNS, *extra_columns] if c in df.columns]
    return df[cols].sort_values(["eval_set", "architecture"]).reset_index(drop=True)


def saebench_columns(icl: Mapping[str, Any] | None) -> dict[str, float]:
    """The table's SAEBench-protocol absorption cells from an analysis' `absorption_icl`
    (saeflow.absorption_icl); nan when the analysis has none."""
    icl = icl or {}
    return {
        "saebench_full_absorption": icl.get("full_absorption", math.nan),
        "saebench_absorption_fraction": icl.get("absorption_fraction", math.nan),
        "saebench_ksparse_f1": icl.get("ksparse_f1", math.nan),
    }


def architecture_rows(
    saes: Mapping[str, str],
    eval_paths: Mapping[tuple[str, str], str | Path],
    analysis_paths: Mapping[str, str | Path],
    cfg_paths: Mapping[str, str | Path] | None = None,
    columns: Mapping[str, Sequence[str | Path]] | None = None,
) -> list[dict[str, Any]]:
    """Join evaluations ((sae, eval_set) -> eval JSON) with each SAE's analysis JSON; `saes` maps SAE ->
    label. A ReLU + L1 SAE also gets the L1 coefficient it ended training with (its cfg.json, `cfg_paths`);
    `columns` ({SAE: column files}) adds the per-SAE columns other studies publish (e.g. autointerp)."""
    rows = []
    for (sae, eval_set), path in eval_paths.items():
        ev, an = read_json(path), read_json(analysis_paths[sae])
        row = {
            "architecture": saes[sae],
            "sae": sae,
            "eval_set": eval_set,
            **ev,
            "mean_max_cos": an["geometry"]["mean_max_abs_cos"],
            "distinct_fraction": an["geometry"]["distinct_fraction"],
            "absorption": an["absorption"]["absorption"],
            **saebench_columns(an.get("absorption_icl")),
        }
        sae_cfg = read_json(cfg_paths[sae])["saeflow"]["sae"] if cfg_paths and sae in cfg_paths else {}
        if sae_cfg.get("architecture") == "relu":
            row["l1_coefficient"] = sae_cfg["l1_coefficient"]
        row.update(read_sae_columns((columns or {}).get(sae, ())))
        rows.append(row)
    return rows


def decoder_cos_hist(
    max_abs_cos: Mapping[str, Sequence[float]],
    out_path: str | Path,
    *,
    bins: int = 50,
    distinct_threshold: float = 0.5,
) -> None:
    """Histogram (step lines, one per architecture) of each latent's max |cosine| to its nearest other
    latent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    edges = torch.linspace(0, 1, bins + 1).tolist()
    for label, values in max_abs_cos.items():
        v = list(values)
        mean = sum(v) / max(len(v), 1)
        ax.hist(
            v, bins=edges, histtype="step", linewidth=1.5, density=True, label=f"{label} (mean {mean:.3f})"
        )
    ax.axvline(distinct_threshold, color="grey", linestyle="--", linewidth=1, label="distinct threshold")
    ax.set_xlabel("max |cos| of a latent's decoder direction to any other latent's")
    ax.set_ylabel("density (latents)")
    ax.set_title("Decoder geometry")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------- penalty cost


class OrthoTiming(NamedTuple):
    width: int
    chunk: int
    penalty_s: float
    """Seconds per call of the orthogonality penalty, forward + backward (best of the repeats)."""


def _best(fn, steps: int, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def time_ortho_penalty(
    width: int, d_in: int, chunk: int, *, steps: int = 5, repeats: int = 3, device: str = "cpu"
) -> OrthoTiming:
    from saeflow.sae.penalties import orthogonality_penalty

    W = torch.randn(width, d_in, device=device, requires_grad=True)

    def call():
        W.grad = None
        orthogonality_penalty(W, chunk).backward()

    return OrthoTiming(width, chunk, _best(call, steps, repeats))


def time_training_step(
    sae_cfg: dict[str, Any], batch: int, *, steps: int = 5, repeats: int = 3, device: str = "cpu"
) -> float:
    """Seconds per optimiser step of an SAE as the trainer runs it (loss, backward, decoder-norm handling,
    gradient clipping, Adam, dead-latent tracking), on random activations of norm ≈ √d."""
    from saeflow.sae import make_sae
    from saeflow.sae.objectives import batch_objective

    sae = make_sae(sae_cfg, seed=0).to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    x = torch.randn(batch, sae.cfg.d_in, device=device)

    def step():
        terms = sae.training_loss(x)
        loss = batch_objective(terms.per_token, terms.aux, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_decoder_grad_()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        sae.normalize_decoder_()
        sae.update_dead_tracking_(terms.latents)

    return _best(step, steps, repeats)


# ------------------------------------------------------------------------------------------- per-SAE analysis


class SAEAnalysis(NamedTuple):
    geometry: dict[str, Any]
    """mean_max_abs_cos, distinct_fraction, distinct_threshold and max_abs_cos (one value per latent)."""
    absorption: dict[str, Any]
    """saeflow.absorption.AbsorptionResult as a dict."""
    absorption_icl: dict[str, Any] | None = None
    """saeflow.absorption_icl.IclAbsorptionResult as a dict (SAEBench's protocol), when a letter set was
    given."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "geometry": self.geometry,
            "absorption": self.absorption,
            "absorption_icl": self.absorption_icl,
        }


def token_letters(token_ids: Sequence[int], tokenizer: Any) -> list[str | None]:
    """First letter of each token's string (saeflow.absorption.first_letter), None for non-letter tokens."""
    from saeflow.absorption import first_letter

    ids = sorted({int(i) for i in token_ids})
    vocab = dict(zip(ids, tokenizer.convert_ids_to_tokens(ids), strict=True))
    return [first_letter(vocab[int(i)] or "") for i in token_ids]


def analyze_sae(
    sae: torch.nn.Module,
    acts: torch.Tensor,
    letters: Sequence[str | None],
    *,
    distinct_threshold: float = 0.5,
    absorption: dict[str, Any] | None = None,
    letter_set: Any = None,
    absorption_icl: dict[str, Any] | None = None,
) -> SAEAnalysis:
    """Decoder geometry (saeflow.metrics.decoder_cosine_stats) and first-letter absorption
    (saeflow.absorption) of a loaded SAE on raw activations `acts` [N, d] whose tokens start with
    `letters`; with a `letter_set` (saeflow.absorption_icl.LetterSet of the SAE's layer) also SAEBench's
    absorption under the settings `absorption_icl`."""
    from saeflow.absorption import AbsorptionSettings, absorption_score
    from saeflow.metrics import decoder_cosine_stats

    geo = decoder_cosine_stats(sae.W_dec.detach(), threshold=distinct_threshold)
    latents = sae.reconstruct_raw(acts.float()).latents
    result = absorption_score(
        acts.float(),
        letters,
        latents,
        sae.W_enc.detach(),
        sae.W_dec.detach(),
        AbsorptionSettings.from_dict(absorption),
    )
    return SAEAnalysis(
        geometry={
            "mean_max_abs_cos": geo.mean_max_abs_cos,
            "distinct_fraction": geo.distinct_fraction,
            "distinct_threshold": distinct_threshold,
            "max_abs_cos": geo.max_abs_cos.tolist(),
        },
        absorption=result.to_dict(),
        absorption_icl=None if letter_set is None else icl_absorption(sae, letter_set, absorption_icl),
    )


def icl_absorption(sae: torch.nn.Module, letter_set: Any, settings: dict[str, Any] | None) -> dict[str, Any]:
    """SAEBench-protocol absorption (saeflow.absorption_icl) of a loaded SAE on a letter set."""
    from saeflow.absorption_icl import IclAbsorptionSettings, icl_absorption_score

    with torch.no_grad():
        latents = sae.reconstruct_raw(letter_set.acts.float()).latents
    return icl_absorption_score(
        letter_set.acts,
        letter_set.letters,
        letter_set.train,
        latents,
        sae.W_dec.detach(),
        IclAbsorptionSettings.from_dict(settings),
        probes=letter_set.probes,
    ).to_dict()
