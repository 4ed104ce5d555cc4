"""The protein study's jobs as library functions (the scripts/protein_*.py adapters call these).

prepare: chains split train/val/test by the seeded id hash → records JSONL per split;
extract: residue activations of one split (saeflow.studies.protein.extract) + the stored records (cut to the
model's length and the residue budget, row-aligned with the activations);
analyse: one unit set (a trained SAE, the raw neurons, or a randomly initialised SAE) → L0 / FVU on test
chains, fidelity (% CE recovered), InterPLM concept association (val picks, test reports), Fisher/BH,
per-latent table; steer: steering trials of one SAE (its shortlisted latents and random latents of matched
frequency) and the SAE-free controls (strength 0, difference of means).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from saeflow.errors import ConfigError
from saeflow.io import read_jsonl, write_jsonl
from saeflow.models.base import SubjectModel
from saeflow.studies.protein.data import ProteinRecord, read_gor4, split_records

log = logging.getLogger(__name__)


# --- model and records --------------------------------------------------------------------------------------
def load_protein_model(settings: Mapping[str, Any], source: str, device: str = "cpu") -> SubjectModel:
    """A UniRep (weights folder) or ESM (hub id / folder) model from the study's `model` settings."""
    kind = settings["kind"]
    if kind == "unirep":
        from saeflow.models.unirep import UniRepModel

        return UniRepModel.load(
            source, name=settings["name"], max_length=int(settings["max_length"]), device=device
        )
    if kind == "esm":
        from saeflow.models.esm import EsmModel

        model = EsmModel.load(source, max_length=int(settings["max_length"]), device=device)
        model.name = settings["name"]
        return model
    raise ConfigError(f"protein.model.kind must be unirep or esm; got {kind!r}")


def read_protein_records(data: Mapping[str, Any], source: str) -> list[ProteinRecord]:
    if data.get("format", "gor4") != "gor4":
        raise ConfigError(f"protein.data.format: unsupported {data.get('format')!r} (gor4)")
    return read_gor4(source)


def split_chains(records: Sequence[ProteinRecord], seed: int, fractions: Sequence[float]) -> dict[str, list]:
    return split_records(records, seed, fractions)._asdict()


def write_records(path: str | Path, records: Sequence[ProteinRecord]) -> int:
    return write_jsonl(path, ({"id": r.id, "sequence": r.sequence, "labels": r.labels} for r in records))


def read_records(path: str | Path) -> list[ProteinRecord]:
    return [ProteinRecord(row["id"], row["sequence"], row.get("labels")) for row in read_jsonl(path)]


def extract_split(
    model: SubjectModel,
    records: Sequence[ProteinRecord],
    layer: int,
    out_dir: str | Path,
    records_out: str | Path,
    *,
    max_tokens: int,
    batch_size: int,
    shard_rows: int,
    dtype: str = "float16",
):
    """Store the split's residue states and the stored records (row-aligned with the activation rows)."""
    from saeflow.studies.protein.extract import extract_residue_activations, select_records

    chosen = select_records(model, records, max_tokens)
    write_records(records_out, chosen)
    return extract_residue_activations(
        model,
        chosen,
        layer,
        out_dir,
        max_tokens=max_tokens,
        batch_size=batch_size,
        shard_rows=shard_rows,
        dtype=dtype,
    )


# --- unit sets ----------------------------------------------------------------------------------------------
class Identity:
    """The raw-neuron 'SAE': latents = activations, reconstruction = input (fidelity 100% by construction)."""

    def reconstruct_raw(self, x: torch.Tensor):
        from saeflow.sae.base import ForwardOutput

        return ForwardOutput(x.float(), x)


def random_sae(reference_dir: str | Path, seed: int):
    """A randomly initialised SAE with the reference SAE's config and input scale (the untrained control)."""
    from saeflow.sae import load_sae, make_sae

    ref = load_sae(reference_dir)
    sae = make_sae(ref.cfg, seed=seed)
    sae.set_input_scale_(ref.input_scale)
    return sae.eval()


def load_units(kind: str, sae_dir: str | Path | None, seed: int):
    """The encoder of a unit set: 'sae' (a trained SAE's folder), 'random' (reference folder), 'neurons'."""
    from saeflow.sae import load_sae

    if kind == "neurons":
        return Identity()
    if kind == "random":
        return random_sae(sae_dir, seed)
    return load_sae(sae_dir).eval()


def _latents(manifest: str | Path, units: Any):
    from saeflow.studies.protein.extract import stored_latents

    return stored_latents(manifest, None if isinstance(units, Identity) else units)


def analyse_units(
    units: Any,
    *,
    model: SubjectModel,
    layer: int,
    manifests: Mapping[str, str],
    records: Mapping[str, Sequence[ProteinRecord]],
    thresholds: Sequence[float],
    concept_names: Sequence[str] | None,
    fidelity_chains: int,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Everything measured on one unit set. Returns {'summary': dict, 'latents': DataFrame (concepts.csv),
    'best': DataFrame (best latent per concept), 'arrays': dict for steering (scale, val_f1, freq, names)}."""
    from saeflow.activations import ActivationStore
    from saeflow.studies.protein.concepts import ConceptLabels, best_per_concept, concept_scores, latent_table
    from saeflow.studies.protein.fidelity import protein_fidelity

    train = _latents(manifests["train"], units)
    scale = train.acts.max(dim=0).values
    del train
    store = ActivationStore(manifests["train"])
    mean = sum(r.acts.sum(dim=0) for r in store.iter_rows(8192)) / store.n_tokens

    scores = {}
    for split in ("val", "test"):
        lat = _latents(manifests[split], units)
        labels = ConceptLabels.build(records[split], names=concept_names)
        scores[split] = concept_scores(lat.acts, labels, scale, thresholds)
        if split == "val":
            freq = (lat.acts > 0).float().mean(dim=0).numpy()
        else:
            l0 = float((lat.acts > 0).float().sum(dim=1).mean())
            raw = _latents(manifests["test"], Identity()).acts
            recon = raw if isinstance(units, Identity) else units.reconstruct_raw(raw).recon.float()
            fvu = float((raw - recon).pow(2).sum() / (raw - raw.mean(dim=0)).pow(2).sum())
    best = best_per_concept(scores["val"], scores["test"])
    latents = latent_table(scores["val"], scores["test"])
    top = _top_sequences(units, manifests["test"], records["test"], latents)
    latents["top_sequences"] = top
    fid = protein_fidelity(
        model, list(records["test"])[:fidelity_chains], layer, units, mean, batch_size=batch_size
    )
    covered_latents = int((latents["test_f1"] > 0.5).sum())
    summary = {
        "n_units": len(scale),
        "l0": l0,
        "fvu": fvu,
        "explained_variance": 1 - fvu,
        **{k: float(v) if k != "n_scored" else int(v) for k, v in fid._asdict().items()},
        "concepts_covered": int(best["covered"].sum()),
        "n_concepts": len(best),
        "latents_f1_gt_0.5": covered_latents,
        "dead_fraction": float((scale <= 0).float().mean()),
    }
    val_f1 = scores["val"].f1.max(axis=0)  # [L, C] best over thresholds
    arrays = {"scale": scale.numpy(), "val_f1": val_f1, "freq": freq, "names": np.array(scores["val"].names)}
    return {"summary": summary, "latents": latents, "best": best, "arrays": arrays}


def _top_sequences(
    units: Any, manifest: str, records: Sequence[ProteinRecord], latents: pd.DataFrame, n: int = 3
) -> list[str]:
    """Per latent: ids of the test chains holding its `n` largest activations (distinct chains)."""
    lat = _latents(manifest, units)
    ids = [r.id for r in records]
    k = min(len(lat.acts), 64)
    top = lat.acts.topk(k, dim=0).indices.T  # [L, k]
    out = []
    for row in top.tolist():
        seen: list[str] = []
        for i in row:
            rid = ids[int(lat.doc_index[i])]
            if rid not in seen:
                seen.append(rid)
            if len(seen) == n:
                break
        out.append(" ".join(seen))
    return out


# --- steering -----------------------------------------------------------------------------------------------
def _generate(
    model: SubjectModel, *, n: int, length: int, seed: int, layer: int, fn, temperature: float, rounds: int
) -> list[str]:
    from saeflow.studies.protein.steering import generate_esm, generate_unirep

    if model.kind == "esm":
        return generate_esm(
            model, n=n, length=length, seed=seed, layer=layer, fn=fn, rounds=rounds, temperature=temperature
        )
    return generate_unirep(model, n=n, length=length, seed=seed, layer=layer, fn=fn, temperature=temperature)


def fit_oracle(records: Mapping[str, Sequence[ProteinRecord]], seed: int = 0, max_residues: int = 20_000):
    from saeflow.studies.protein.oracle import SecondaryStructureOracle

    # 20k residues: 0.59 accuracy like 60k (oracle.py), a third of the lbfgs time
    return SecondaryStructureOracle.fit(
        records["train"], records["val"], seed=seed, max_residues=max_residues
    )


def steering_trials(
    model: SubjectModel,
    *,
    layer: int,
    settings: Mapping[str, Any],
    oracle: Any,
    background: np.ndarray,
    sae: Any | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
    sae_name: str = "",
    direction: torch.Tensor | None = None,
    norm: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per trial. With `sae`: its shortlisted latents and random matched latents at every strength >
    0 × n_latents × seed. Without: the controls, strength 0 and the difference-of-means direction (strength >
    0)."""
    from saeflow.studies.protein.concepts import PROSITE
    from saeflow.studies.protein.steering import (
        SteeringSpec,
        direction_fn,
        matched_random_latents,
        sae_steering_fn,
        score_generations,
    )

    motif = settings.get("motif")
    pattern = PROSITE[motif] if motif else None
    strengths = [float(s) for s in settings["strengths"] if float(s) > 0]
    gen = {
        "n": int(settings["sequences"]),
        "length": int(settings["length"]),
        "layer": layer,
        "temperature": float(settings.get("temperature", 1.0)),
        "rounds": int(settings.get("rounds", 10)),
    }
    rows = []

    def trial(method: str, n_latents: int, strength: float, s: int, fn, latents: Sequence[int] = ()) -> None:
        seqs = _generate(model, seed=seed * 1000 + s, fn=fn, **gen)
        sc = score_generations(seqs, model=model, oracle=oracle, background=background, motif=pattern)
        rows.append(
            {
                "sae": sae_name or "none",
                "method": method,
                "n_latents": n_latents,
                "strength": strength,
                "seed": s,
                "latents": " ".join(map(str, latents)),
                **sc._asdict(),
                "example": seqs[0],
            }
        )

    seeds = range(int(settings["seeds"]))
    if sae is None:
        for s in seeds:
            trial("strength 0", 0, 0.0, s, None)
        if direction is not None:
            for strength in strengths:
                for s in seeds:
                    trial("difference of means", 0, strength, s, direction_fn(direction, strength, norm))
        return pd.DataFrame(rows)
    names = list(arrays["names"])
    concept = settings["concept"]
    if concept not in names:
        raise ConfigError(
            f"protein.steering.concept: '{concept}' is not a scored concept ({', '.join(names)})"
        )
    c = names.index(concept)
    order = np.argsort(-arrays["val_f1"][:, c], kind="stable")
    max_act = torch.as_tensor(arrays["scale"]).float()
    mode = settings.get("mode", "amplify")
    for n in [int(v) for v in settings["n_latents"]]:
        chosen = tuple(int(i) for i in order[:n])
        for s in seeds:
            rand = matched_random_latents(np.asarray(arrays["freq"]), chosen, seed=seed * 1000 + s)
            for strength in strengths:
                trial(
                    "SAE latents",
                    n,
                    strength,
                    s,
                    sae_steering_fn(sae, SteeringSpec(chosen, mode, strength), max_act),
                    chosen,
                )
                trial(
                    "random latents",
                    n,
                    strength,
                    s,
                    sae_steering_fn(sae, SteeringSpec(rand, mode, strength), max_act),
                    rand,
                )
    return pd.DataFrame(rows)


def helix_direction(
    manifest: str, records: Sequence[ProteinRecord], concept: str
) -> tuple[torch.Tensor, float]:
    """Difference-of-means direction of `concept` over the training residues and the mean residue-state
    norm."""
    from saeflow.studies.protein.concepts import ConceptLabels
    from saeflow.studies.protein.extract import stored_latents
    from saeflow.studies.protein.steering import difference_of_means

    acts = stored_latents(manifest).acts
    labels = ConceptLabels.build(records, names=[concept])
    return difference_of_means(acts, labels.present[:, 0]), float(acts.norm(dim=1).mean())
