"""The convergence controls: which SAEs get one and what it trains on."""

import pytest

from saeflow.errors import ConfigError
from saeflow.studies.convergence.specs import convergence_specs

DEFINED = {
    "gsae": {"train_on": "general.train", "monitor_on": "general.heldout", "k": 32, "lr": 4e-4, "seed": 0},
    "plain": {"train_on": "general.train", "k": 32},
    "ft": {"train_on": "medical.train", "monitor_on": "general.heldout", "init_from": "gsae"},
    "relu": {"train_on": "general.train", "monitor_on": "general.heldout", "extra": {"target_l0": 32}},
}
CONFIG = {"extraction": {"train_tokens": 1_000_000}, "seed": 0}


def test_every_scratch_sae_with_a_curve_gets_a_control():
    specs = convergence_specs({**CONFIG, "convergence": {"tokens": 16384}}, DEFINED)
    assert list(specs) == ["gsae-control", "relu-control"]  # not the finetune, not the uncurved one
    ctrl = specs["gsae-control"]
    assert ctrl["init_from"] == "gsae" and ctrl["train_on"] == "general.train"
    assert ctrl["epochs"] == pytest.approx(16384 * 3 / 1_000_000)
    assert ctrl["seed"] == 1 and ctrl["lr"] == 2e-4 and ctrl["eval_sets"] == ["general"]
    assert ctrl["k"] == 32 and ctrl["monitor_on"] == "general.heldout"


def test_absent_section_adds_nothing_and_bad_names_are_one_line():
    assert convergence_specs(CONFIG, DEFINED) == {}
    with pytest.raises(ConfigError, match="convergence.saes: unknown SAE 'nope'"):
        convergence_specs({**CONFIG, "convergence": {"saes": ["nope"]}}, DEFINED)
    with pytest.raises(ConfigError, match="'plain' has no training curve"):
        convergence_specs({**CONFIG, "convergence": {"saes": ["plain"]}}, DEFINED)
