"""config/paper/*.yaml: well-formed paper-scale settings on top of config/config.yaml."""

from pathlib import Path

import pytest
import yaml

from saeflow.config import validate_config

ROOT = Path(__file__).resolve().parents[2]
PAPER = sorted((ROOT / "config" / "paper").glob("*.yaml"))


class _StrictLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys without a word; here that is an error."""


def _no_duplicates(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate key(s) {dup}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def merged(paper):
    """What Snakemake does with --configfile: mappings merged key by key, everything else replaced."""

    def update(base, new):
        for k, v in new.items():
            base[k] = update(base.get(k) or {}, v) if isinstance(v, dict) else v
        return base

    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return update(base, yaml.load(paper.read_text(), _StrictLoader))


def test_there_are_paper_configs():
    assert {p.stem for p in PAPER} >= {"shift_pythia70m", "gemma2_2b"}


@pytest.mark.parametrize("paper", PAPER, ids=lambda p: p.name)
def test_paper_config(paper):
    cfg = validate_config(merged(paper), ROOT / "config" / "schema.yaml", source=paper.name)
    assert cfg["device"].startswith("cuda") and cfg["gpu"] == 1
    assert cfg["results_dir"] != "results"  # kept apart from the embedded default's outputs
    assert cfg["experiment"] == paper.stem  # the wandb group
    assert set(cfg["evaluation"]["eval_sets"]) <= set(cfg["corpora"])
    if cfg.get("ssae") is not None:  # a language-model paper setting: the paper's own model, from the hub
        assert not cfg["model"]["source"].startswith("asset:")
        assert set(cfg["ssae"]["subdomains"]) <= set(cfg["evaluation"]["eval_sets"])
    # a paper config runs its paper's studies only: the embedded default's other-domain studies are switched
    # off
    lm_paper = cfg.get("ssae") is not None or cfg.get("bias_in_bios") is not None
    if lm_paper:
        assert cfg.get("protein") is None and cfg.get("recsys") is None
