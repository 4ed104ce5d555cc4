"""ReLU + L1 at matched L0: the L1-coefficient search, and the ReLU SAE reading the coefficient it found."""

import json
import math

import pytest
import torch
from store_helpers import sparse_data, write_store

from saeflow.activations import ActivationStore
from saeflow.errors import ConfigError
from saeflow.sae import SAEConfig, load_sae, make_sae
from saeflow.sae_spec import SAE_DEFAULTS
from saeflow.studies.architectures.l1_search import L1SearchSettings, run_l1_search, search_l1_coefficient

torch.set_num_threads(1)


def _power_law(scale=400.0, power=0.7):
    calls = []

    def probe(lam):
        calls.append(lam)
        return {"l0": scale * lam**-power}

    return probe, calls


@pytest.mark.parametrize("initial", [0.01, 5.0, 1e4])
def test_search_brackets_then_lands_within_tolerance(initial):
    probe, calls = _power_law()
    result = search_l1_coefficient(probe, 32.0, initial, L1SearchSettings(tolerance=0.05, max_probes=12))
    assert result.converged and abs(result.l0 / 32 - 1) <= 0.05
    assert result.l1_coefficient == pytest.approx((400 / 32) ** (1 / 0.7), rel=0.1)
    assert [p["l1_coefficient"] for p in result.probes] == pytest.approx(calls)
    assert result.probes[0]["l1_coefficient"] == pytest.approx(initial)
    # an exact power law is linear in log-log: interpolation needs one probe once the target is bracketed
    assert len(calls) <= math.ceil(abs(math.log(initial / 36.8)) / math.log(4)) + 2


def test_search_stops_at_max_probes_with_the_closest_probe():
    probe, calls = _power_law()
    result = search_l1_coefficient(probe, 32.0, 1e-6, L1SearchSettings(max_probes=3))
    assert len(calls) == 3 and not result.converged
    assert result.l1_coefficient == max(calls)  # L0 falls with λ: the largest λ tried is the closest


def test_search_falls_back_to_log_bisection_on_a_step():
    # L0 jumps from 100 to 10 at λ = 1: interpolation cannot hit 32; the bracket halves in log space
    result = search_l1_coefficient(
        lambda lam: {"l0": 100.0 if lam < 1 else 10.0}, 32.0, 0.25, L1SearchSettings(max_probes=8)
    )
    lams = [p["l1_coefficient"] for p in result.probes]
    assert not result.converged and len(lams) == 8
    assert 0.9 < lams[-1] < 1.1  # homed in on the step


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="unknown key"):
        L1SearchSettings.from_dict({"tolerence": 0.1})
    with pytest.raises(ConfigError, match="tolerance"):
        L1SearchSettings.from_dict({"tolerance": 1.5})


def test_relu_sae_trains_with_the_searched_coefficient(tmp_path):
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"l1_coefficient": 0.25}))
    sae = make_sae(
        {
            "architecture": "relu",
            "d_in": 4,
            "d_sae": 8,
            "l1_coefficient": 5.0,
            "extra": {"l1_search": str(path)},
        }
    )
    assert sae.cfg.l1_coefficient == 0.25
    sae.save(tmp_path / "sae")
    path.unlink()  # a saved SAE no longer needs the search's file: cfg.json holds the coefficient
    assert load_sae(tmp_path / "sae").cfg.l1_coefficient == 0.25


def test_run_l1_search_trains_probes_and_the_final_training_reproduces_the_last_probe(tmp_path):
    from saeflow.train import TrainConfig, train_sae

    x = sparse_data(2048, 16, n_features=64, per_token=4, seed=0)
    store = ActivationStore(write_store(tmp_path / "acts", x, shard_rows=1024))
    spec = {
        **SAE_DEFAULTS,
        "architecture": "relu",
        "d_sae": 64,
        "k": 12,
        "lr": 1e-2,
        "batch_size": 128,
        "epochs": 4,
        "warmup_steps": 5,
        "seed": 0,
        "extra": {"l1_search": str(tmp_path / "s.json")},
    }
    result = run_l1_search(
        spec, store, 12.0, L1SearchSettings(tolerance=0.1, max_probes=8, initial=0.1), tmp_path / "probes"
    )
    assert result.converged, result.probes
    assert abs(result.l0 / 12 - 1) <= 0.1 and not any((tmp_path / "probes").glob("probe-*"))
    (tmp_path / "s.json").write_text(json.dumps(result.to_dict()))
    cfg = SAEConfig.from_dict({**spec, "d_in": 16})
    trained = train_sae(cfg, TrainConfig.from_dict(spec), store, tmp_path / "sae")
    assert trained.sae.cfg.l1_coefficient == result.l1_coefficient
    assert trained.metrics["final"]["l0"] == pytest.approx(result.l0, rel=1e-6)  # same seed and data order
