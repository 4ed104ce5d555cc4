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


def test_evaluated_sets_cover_own_study_and_alias_sets():
    from saeflow.registry import evaluated_sets, sae_aliases

    config = {
        "model": {"name": "m", "layer": 3},
        "corpora": {"general": {}, "medical": {}, "social": {}},
        "evaluation": {"eval_sets": ["general"]},
        "saes": {
            "a": {"train_on": "general.train", "k": 8, "d_sae": 64},
            "b": {"train_on": "general.train", "k": 8, "d_sae": 64, "eval_sets": ["medical"]},
            "c": {"train_on": "general.train", "k": 16, "d_sae": 64, "eval_sets": ["social", "general"]},
        },
    }
    specs = sae_specs(config)
    aliases = sae_aliases(specs)
    assert aliases == {"b": "a"}
    # a: its own (evaluation.eval_sets) + its alias b's; b keeps its own; c its own, in its order
    assert evaluated_sets(specs, config, aliases) == {
        "a": ["general", "medical"],
        "b": ["medical"],
        "c": ["social", "general"],
    }


def test_saelens_sets_default_spec_override_and_alias_union():
    from saeflow.registry import default_saelens_sets, evaluated_sets, sae_aliases, saelens_sets

    config = {
        "model": {"name": "m", "layer": 3},
        "corpora": {"general": {}, "medical": {}, "social": {}},
        "evaluation": {"eval_sets": ["general", "medical"], "saelens_eval_sets": ["general"]},
        "saes": {
            "a": {"train_on": "general.train", "k": 8, "d_sae": 64, "saelens_eval_sets": []},
            "b": {"train_on": "general.train", "k": 8, "d_sae": 64, "eval_sets": ["general", "social"]},
            "c": {"train_on": "general.train", "k": 16, "d_sae": 64, "saelens_eval_sets": ["medical"]},
            "d": {"train_on": "general.train", "k": 32, "d_sae": 64, "eval_sets": ["medical"]},
        },
    }
    specs = sae_specs(config)
    aliases = sae_aliases(specs)
    assert aliases == {"b": "a"}  # saelens_eval_sets does not change what an SAE learns
    evaluated = evaluated_sets(specs, config, aliases)
    # a: none of its own, but its alias b takes the default (general) on its sets: a's job scores it;
    # c: its spec's choice; d: the default, of which it has none
    assert saelens_sets(specs, config, aliases, evaluated) == {
        "a": ["general"],
        "b": ["general"],
        "c": ["medical"],
        "d": [],
    }
    assert default_saelens_sets({"evaluation": {"saelens_eval_sets": None}}, ["x", "y"]) == ["x", "y"]
    bad = {**config, "saes": {"a": {"train_on": "general.train", "saelens_eval_sets": ["legal"]}}}
    with pytest.raises(ConfigError, match=r"saes.a.saelens_eval_sets: unknown corpus 'legal'"):
        sae_specs(bad)


def test_evaluated_sets_add_what_a_study_reads(monkeypatch):
    from saeflow import registry
    from saeflow.study import Study

    config = {
        "model": {"name": "m", "layer": 3},
        "corpora": {"general": {}, "medical": {}},
        "evaluation": {"eval_sets": ["general"]},
        "saes": {"a": {"train_on": "general.train", "k": 8, "d_sae": 64}},
    }
    specs = sae_specs(config)
    reader = Study(name="reader", eval_sets=lambda config, saes: {"a": ["medical", "general"]})
    monkeypatch.setattr(registry, "active_studies", lambda config: [reader])
    assert registry.evaluated_sets(specs, config, {}) == {"a": ["general", "medical"]}
    unknown_sae = Study(name="reader", eval_sets=lambda config, saes: {"zz": ["general"]})
    monkeypatch.setattr(registry, "active_studies", lambda config: [unknown_sae])
    with pytest.raises(ConfigError, match="reader study reads the evaluation of an unknown SAE 'zz'"):
        registry.evaluated_sets(specs, config, {})
    unknown_set = Study(name="reader", eval_sets=lambda config, saes: {"a": ["legal"]})
    monkeypatch.setattr(registry, "active_studies", lambda config: [unknown_set])
    with pytest.raises(ConfigError, match=r"unknown eval sets \['legal'\]"):
        registry.evaluated_sets(specs, config, {})


def test_every_evaluation_a_default_table_reads_is_covered_by_its_sae_job():
    """The core and study tables read per-eval-set JSONs split from each SAE's one evaluation job: every
    (SAE, eval set) they read must be among the job's sets, or the DAG cannot be built."""
    from saeflow.paths import RunPaths
    from saeflow.registry import evaluated_sets, own_eval_sets, sae_aliases
    from saeflow.studies.architectures.workflow import ArchitecturesWorkflow
    from saeflow.studies.boosting.workflow import BoostingWorkflow
    from saeflow.studies.ssae.workflow import SSAEWorkflow

    config = _merged()
    specs = sae_specs(config)
    paths = RunPaths.from_config(config)
    covered = {
        paths.eval_json(sae, es)
        for sae, sets in evaluated_sets(specs, config, sae_aliases(specs, config)).items()
        for es in sets
    }
    read = {paths.eval_json(sae, es) for sae, spec in specs.items() for es in own_eval_sets(spec, config)}
    for entry in ArchitecturesWorkflow(config, specs, paths).entries().values():
        read |= set(entry["evals"].values())
    boosting = BoostingWorkflow(config, specs, paths).entries()
    read |= {
        p for name, evals in boosting["evals"].items() if name != boosting["stacked"] for p in evals.values()
    }
    for row in SSAEWorkflow(config, specs, paths).report_entries():
        read |= {row["paths"]["domain_eval"], row["paths"]["general_eval"]}
    assert len(read) > 100 and read <= covered
