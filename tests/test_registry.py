"""The SAE registry's grid sweeps (saeflow.experiments.sweep_specs) and the 200-SAE scheduling config."""

from pathlib import Path

import pytest
import yaml

from saeflow.config import load_config_files, validate_config
from saeflow.errors import ConfigError
from saeflow.registry import sae_specs, spec_id, sweep_specs

ROOT = Path(__file__).resolve().parents[1]


def _merged(*files):
    """config/config.yaml with --configfile overlays (nested dicts merged, like Snakemake), validated."""
    return load_config_files(ROOT, *files)


def test_sweep_is_the_cartesian_product_with_content_hashed_names():
    sweep = {"base": {"train_on": "general.train", "k": 8}, "grid": {"k": [16, 32], "lr": [1, 2]}}
    config = {"sweeps": {"s": sweep}}
    specs = sweep_specs(config)
    assert len(specs) == 4
    assert sorted((s["k"], s["lr"]) for s in specs.values()) == [(16, 1), (16, 2), (32, 1), (32, 2)]
    for name, spec in specs.items():  # the grid overrides the base; the name is the spec's hash
        assert name == f"s-{spec_id(spec)}" and spec["train_on"] == "general.train"
    assert sweep_specs(config) == specs  # same parameters, same names
    assert spec_id({"a": 1, "b": 2}) == spec_id({"b": 2, "a": 1})


def test_sweep200_config_defines_200_distinct_saes():
    config = _merged("config/sweep200.yaml")
    swept = {n: s for n, s in sae_specs(config).items() if n.startswith("sweep200-")}
    assert len(swept) == 200
    assert len({(s["d_sae"], s["k"], s["lr"], s["seed"]) for s in swept.values()}) == 200
    assert all(s["architecture"] == "topk" and s["train_on"] == "general.train" for s in swept.values())


def test_bad_sweep_names_the_key():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["sweeps"] = {"s": {"base": {"train_on": "general.train"}, "grid": {"k": 16}}}
    with pytest.raises(ConfigError, match="sweeps.s.grid.k"):
        validate_config(config, ROOT / "config" / "schema.yaml")


def test_extraction_settings_budgets():
    from saeflow.registry import extraction_settings

    config = {
        "extraction": {"train_tokens": 1000, "heldout_tokens": 100, "shard_rows": 64},
        "model": {"batch_size": 4, "dtype": "float32"},
    }
    train = extraction_settings(config, "general.train")
    assert train == {
        "max_tokens": 1000,
        "batch_size": 4,
        "shard_rows": 64,
        "dtype": "float16",
        "compute_dtype": "float32",
    }
    assert extraction_settings(config, "general.heldout")["max_tokens"] == 100
    # an active study's budget wins for its own text sets (the first one that answers); None passes
    config.update(
        corpora={"medical": {}},
        ssae={"subdomains": ["medical"], "budget_tokens": 7, "concepts": {"tokens": 9}},
    )
    assert extraction_settings(config, "medical.sel-dense")["max_tokens"] == 7
    assert extraction_settings(config, "medical.concepts")["max_tokens"] == 9
    assert extraction_settings(config, "medical.heldout")["max_tokens"] == 100
    config["extraction"]["dtype"] = "bfloat16"
    assert extraction_settings(config, "general.train")["dtype"] == "bfloat16"
    config["extraction"]["compute_dtype"] = "bfloat16"  # the model runs in bf16 while extracting only
    assert extraction_settings(config, "general.train")["compute_dtype"] == "bfloat16"


def test_init_from_cycle_names_the_saes():
    from saeflow.errors import ConfigError
    from saeflow.registry import sae_specs

    config = {
        "seed": 0,
        "model": {"name": "m", "layer": 0},
        "corpora": {"general": {}},
        "saes": {
            "a": {"train_on": "general.train", "init_from": "b"},
            "b": {"train_on": "general.train", "init_from": "a"},
        },
    }
    with pytest.raises(ConfigError, match=r"init_from cycle a -> b -> a"):
        sae_specs(config)


def test_unknown_train_on_corpus_is_refused_even_with_a_split():
    from saeflow.errors import ConfigError
    from saeflow.registry import sae_specs

    config = {
        "seed": 0,
        "model": {"name": "m", "layer": 0},
        "corpora": {"general": {}},
        "saes": {"a": {"train_on": "legal.train"}},
    }
    with pytest.raises(ConfigError, match=r"saes.a.train_on: unknown corpus 'legal' in 'legal.train'"):
        sae_specs(config)
    config["saes"]["a"] = {"train_on": "general.train", "eval_sets": ["legal"]}
    with pytest.raises(ConfigError, match=r"saes.a.eval_sets: unknown corpus 'legal'"):
        sae_specs(config)
    config["saes"]["a"] = {"train_on": "general.train"}
    config["evaluation"] = {**config.get("evaluation", {}), "saelens_eval_sets": ["legal"]}
    with pytest.raises(ConfigError, match=r"evaluation.saelens_eval_sets: unknown corpus 'legal'"):
        sae_specs(config)


def test_registry_cli_prints_every_sae(capsys):
    from saeflow.registry import main

    main(["--root", str(ROOT), "--configfile", "config/test.yaml"])
    out = capsys.readouterr().out
    assert "gsae" in out and "arch-ortsae" in out and "boost-" in out and "SAEs" in out


def test_identical_specs_train_once_and_the_alias_keeps_its_name():
    from saeflow.registry import canonical_names, registry_table, sae_aliases

    config = {
        "model": {"name": "m", "layer": 3},
        "corpora": {"general": {}, "medical": {}},
        "saes": {
            "a": {"train_on": "general.train", "k": 8, "d_sae": 64},
            "b": {"train_on": "general.train", "k": 8, "d_sae": 64, "eval_sets": ["medical"]},
            "c": {"train_on": "general.train", "k": 16, "d_sae": 64},
            "ft-a": {"train_on": "medical.train", "init_from": "a", "d_sae": 64},
            "ft-b": {"train_on": "medical.train", "init_from": "b", "d_sae": 64},
            "sel": {"train_on": "medical.sel-domain", "init_from": "a", "d_sae": 64},
        },
    }
    specs = sae_specs(config)
    # eval_sets do not change what is learned; a finetune of identical parents is identical too
    assert sae_aliases(specs) == {"b": "a", "ft-b": "ft-a"}
    assert canonical_names(specs)["c"] == "c"
    # a text set declared identical to another (Study.text_aliases) makes its SAE an alias as well
    assert canonical_names(specs, {"medical.sel-domain": "medical.train"})["sel"] == "ft-a"
    rows = {r["name"]: r for r in registry_table(config)}
    assert rows["b"]["alias_of"] == "a" and rows["a"]["alias_of"] == ""
