"""Tiny ESM end to end: extract residues → train an SAE with the core trainer → concepts → fidelity →
steering."""

import numpy as np
import tiny_models
import torch

from saeflow.activations import ActivationStore
from saeflow.sae import SAEConfig, load_sae
from saeflow.studies.protein.concepts import ConceptLabels, best_per_concept, concept_scores, latent_table
from saeflow.studies.protein.data import ProteinRecord, split_records
from saeflow.studies.protein.extract import extract_residue_activations, stored_latents
from saeflow.studies.protein.steering import SteeringSpec, generate_esm, sae_steering_fn
from saeflow.train import TrainConfig, train_sae


def tiny_esm(tmp_path):
    return tiny_models.tiny_esm(tmp_path, layers=2, max_positions=128)


def chains(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        seq, lab = "", ""
        for _ in range(3):
            helix = rng.random() < 0.5
            size = int(rng.integers(4, 10))
            seq += "".join(rng.choice(list("AELK" if helix else "GPVT"), size))
            lab += ("H" if helix else "C") * size
        out.append(ProteinRecord(f"chain{i}", seq, lab))
    return out


def test_tiny_esm_end_to_end(tmp_path):
    torch.set_num_threads(1)
    model = tiny_esm(tmp_path)
    splits = split_records(chains(60), seed=0, fractions=(0.6, 0.2, 0.2))
    sets = {}
    for name, recs in splits._asdict().items():
        sets[name] = extract_residue_activations(
            model, recs, 1, tmp_path / name, max_tokens=10_000, batch_size=8, shard_rows=256, dtype="float32"
        )
        assert sets[name].n_tokens == sum(len(r.sequence) for r in recs)
    train = TrainConfig(lr=3e-3, batch_size=64, epochs=2, warmup_steps=2, checkpoint_every=0, log_every=5)
    train_sae(
        SAEConfig(architecture="topk", d_in=16, d_sae=32, k=4),
        train,
        ActivationStore(tmp_path / "train" / "manifest.json"),
        tmp_path / "sae",
    )
    sae = load_sae(tmp_path / "sae")

    # concepts: max-normalise by the training maxima, pick on validation, report on test
    scale = stored_latents(tmp_path / "train" / "manifest.json", sae).acts.max(dim=0).values
    scores = {}
    for name in ("val", "test"):
        latents = stored_latents(tmp_path / name / "manifest.json", sae)
        labels = ConceptLabels.build(splits._asdict()[name], names=["helix", "coil"])
        assert len(latents.acts) == len(labels)
        scores[name] = concept_scores(latents.acts, labels, scale)
    best = best_per_concept(scores["val"], scores["test"])
    assert list(best["concept"]) == ["helix", "coil"] and best["test_f1"].between(0, 1).all()
    # the residue composition separates helix from coil here, so some latent should find it
    assert best["test_f1"].max() > 0.5
    assert len(latent_table(scores["val"], scores["test"])) == 32

    # fidelity: masked-LM CE clean vs spliced (same seeded masks)
    batch = model.batch(model.encode(splits.test[:8]))
    clean = model.token_losses(batch)
    with model.splice(1, lambda h: sae.reconstruct_raw(h).recon):
        spliced = model.token_losses(batch)
    assert torch.equal(clean.scored, spliced.scored) and torch.isfinite(spliced.loss).all()

    # steering by iterative masked decoding: strength 0 keeps generation unchanged
    plain = generate_esm(model, n=3, length=20, seed=1, rounds=4)
    assert all(len(s) == 20 and set(s) <= set("ACDEFGHIKLMNPQRSTVWY") for s in plain)
    zero = sae_steering_fn(sae, SteeringSpec((0, 1), "amplify", 0.0), scale)
    assert generate_esm(model, n=3, length=20, seed=1, rounds=4, layer=1, fn=zero) == plain
