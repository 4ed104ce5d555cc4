"""SSAE study: generated registry entries, the candidate pool and selections, the table and figures."""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from saeflow.config import validate_config
from saeflow.errors import ConfigError, DataError
from saeflow.io import write_json
from saeflow.registry import sae_specs
from saeflow.retrieval import Candidates, approx_token_counter, build_index
from saeflow.studies.ssae.report import (
    concept_bins_frame,
    pareto_figure,
    retrieval_table,
    ssae_table,
    tail_recall_figure,
)
from saeflow.studies.ssae.specs import (
    build_pool,
    embed_documents_count,
    extraction_budget,
    report_rows,
    run_selection,
    seed_documents,
    selection_record,
    sparsity_for,
    ssae_variants,
    tracin_rerank,
)
from saeflow.studies.ssae.specs import (
    ssae_specs as _ssae_specs,
)

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "config" / "schema.yaml"


def ssae_specs(config):
    """The study sees the SAEs defined before it: here the ones under saes:."""
    return _ssae_specs(config, config.get("saes") or {})


def _config(**ssae):
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["ssae"] = {**raw.get("ssae", {}), **ssae}
    return validate_config(raw, SCHEMA)


def test_default_config_generates_finetuned_gsaes():
    cfg = _config(
        subdomains=["medical"],
        selections=["dense", "domain"],
        objectives={"erm": 0.0, "term": 0.5},
        sparsity={"default": [32], "dense.erm": [16, 64]},
    )
    variants = ssae_variants(cfg)
    assert [v.name for v in variants] == [
        "ssae-medical-dense-erm-k16",
        "ssae-medical-dense-erm-k64",
        "ssae-medical-dense-term-k32",
        "ssae-medical-domain-erm-k32",
        "ssae-medical-domain-term-k32",
    ]
    assert variants[0].sparsity_key == "k" and variants[0].sparsity == 16
    specs = sae_specs(cfg)  # through the registry: resolved and init_from checked
    s = specs["ssae-medical-dense-term-k32"]
    assert s["init_from"] == "gsae" and s["train_on"] == "medical.sel-dense"
    assert s["tilt"] == 0.5 and s["k"] == 32 and s["d_sae"] == cfg["saes"]["gsae"]["d_sae"]
    assert s["eval_sets"] == ["medical", "general"]
    assert s["saelens_eval_sets"] == []  # the SSAE table reads our convention only: no SAELens pass
    assert s["lr"] == cfg["ssae"]["finetune"]["lr"]
    assert "gsae" in specs and "eval_sets" not in specs["gsae"]


def test_sparsity_lookup_order():
    cfg = {"ssae": {"sparsity": {"default": [1], "erm": [2], "dense": [3], "dense.erm": [4]}}}
    assert sparsity_for(cfg, "dense", "erm") == [4]
    assert sparsity_for(cfg, "dense", "term") == [3]
    assert sparsity_for(cfg, "bm25", "erm") == [2]
    assert sparsity_for(cfg, "bm25", "term") == [1]
    with pytest.raises(ConfigError, match="default"):
        sparsity_for({"ssae": {"sparsity": {}}}, "bm25", "term")
    # an empty list skips a variant
    cfg = _config(
        subdomains=["medical"],
        selections=["dense", "random"],
        objectives={"erm": 0.0, "term": 1.0},
        sparsity={"default": [32], "random.term": []},
    )
    assert [v.name for v in ssae_variants(cfg)] == [
        "ssae-medical-dense-erm-k32",
        "ssae-medical-dense-term-k32",
        "ssae-medical-random-erm-k32",
    ]


def test_l1_sweep_for_relu_base():
    cfg = _config(
        subdomains=["medical"],
        selections=["dense"],
        sparsity_key="l1_coefficient",
        objectives={"erm": 0},
        sparsity={"default": [2.5, 10]},
    )
    cfg["saes"]["gsae"] = {**cfg["saes"]["gsae"], "architecture": "relu", "l1_coefficient": 5.0}
    specs = ssae_specs(cfg)
    assert sorted(specs) == ["ssae-medical-dense-erm-l1c10", "ssae-medical-dense-erm-l1c2.5"]
    assert specs["ssae-medical-dense-erm-l1c2.5"]["l1_coefficient"] == 2.5
    assert (
        specs["ssae-medical-dense-erm-l1c2.5"]["k"] == cfg["saes"]["gsae"]["k"]
    )  # inherited, unused by relu


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="'physics' is not configured"):
        ssae_variants(_config(subdomains=["physics"]))
    with pytest.raises(ConfigError, match="general corpus"):
        ssae_variants(_config(subdomains=["general"]))
    cfg = _config(subdomains=["medical"], base_sae="nope")
    with pytest.raises(ConfigError, match="base_sae"):
        ssae_specs(cfg)
    assert ssae_specs(_config(subdomains=[])) == {}


def test_a_new_subdomain_is_config_only():
    cfg = _config(subdomains=["medical", "physics"], selections=["random"])
    cfg = copy.deepcopy(cfg)
    cfg["corpora"]["physics"] = {"sources": [{"path": "physics.jsonl"}]}
    assert {v.subdomain for v in ssae_variants(cfg)} == {"medical", "physics"}
    assert extraction_budget(cfg, "physics.sel-random") == cfg["ssae"]["budget_tokens"]
    assert extraction_budget(cfg, "physics.concepts") == cfg["ssae"]["concepts"]["tokens"]
    assert extraction_budget(cfg, "physics.train") is None and extraction_budget(cfg, "general.train") is None
    assert embed_documents_count(cfg, "general") == cfg["ssae"]["pool"]["general_documents"]
    assert (
        embed_documents_count(cfg, "physics")
        == cfg["ssae"]["seeds"] + cfg["ssae"]["pool"]["domain_documents"]
    )


def _docs(prefix, n, words):
    return [{"id": f"{prefix}{i}", "text": f"{words} number {i}"} for i in range(n)]


def test_pool_and_every_method_on_toy_data():
    general = _docs("g", 40, "football match stadium")
    domain = _docs("m", 20, "patient kidney hospital")
    count = approx_token_counter(4.0)
    pool = build_pool(general, domain, n_general=30, n_seeds=3, n_hidden=10, count_tokens=count)
    assert len(pool.candidates) == 40 and pool.n_general == 30
    assert pool.hidden_rows.tolist() == list(range(3, 13))
    assert pool.positives == {f"m{i}" for i in range(3, 13)}
    budget = 40
    # dense with fake embeddings: domain rows along e0, general along e1
    dom_emb = np.tile(np.array([[1.0, 0.0]], np.float32), (13, 1))
    gen_index = build_index(np.tile(np.array([[0.0, 1.0]], np.float32), (30, 1)))
    for method in ("dense", "bm25", "random", "domain"):
        sel, cands = run_selection(
            method,
            pool,
            domain,
            budget_tokens=budget,
            top_k=16,
            seed=0,
            count_tokens=count,
            general_index=gen_index,
            domain_embeddings=dom_emb,
        )
        rec = selection_record(sel, cands, pool, subdomain="medical", method=method, seconds=0.0, settings={})
        assert rec["n_tokens"] >= budget
        if method in ("dense", "bm25"):
            assert rec["quality"]["precision"] == 1.0, method
        if method == "domain":
            assert rec["quality"]["precision"] is None
            assert [d["id"] for d in rec["documents"]][:2] == ["m0", "m1"]
    with pytest.raises(DataError, match="seeds"):
        build_pool(general, domain[:3], n_general=5, n_seeds=3, n_hidden=5, count_tokens=count)


def _write_fixture(tmp_path):
    entries = []
    for sel, obj, k, ppl, l0 in [
        ("gsae", "erm", 32, 30.0, 32.0),
        ("dense", "erm", 16, 28.0, 16.0),
        ("dense", "erm", 32, 26.0, 32.0),
        ("dense", "term", 32, 27.0, 32.0),
    ]:
        name = "gsae" if sel == "gsae" else f"ssae-medical-{sel}-{obj}-k{k}"
        paths = {}
        for es, p in (("medical", ppl), ("general", ppl - 5)):
            path = tmp_path / f"{name}.{es}.json"
            write_json(
                path,
                {
                    "l0": l0,
                    "fvu": 0.2,
                    "explained_variance": 0.8,
                    "perplexity_clean": 20.0,
                    "perplexity_sae": p,
                    "delta_ce": math.log(p / 20.0),
                    "ce_loss_score": 0.9,
                },
            )
            paths[f"{'domain' if es == 'medical' else 'general'}_eval"] = str(path)
        paths["concepts"] = str(tmp_path / f"{name}.concepts.json")
        write_json(
            paths["concepts"],
            {
                "tail_recall_rare": 0.1 if obj == "erm" else 0.2,
                "n_captured_total": 5,
                "coverage_rare": 0.3,
                "bins": [
                    {
                        "label": "0",
                        "n_types": 2,
                        "n_captured": 1,
                        "recall": 0.5,
                        "n_tokens": 3,
                        "coverage": 0.3,
                    },
                    {
                        "label": ">=1",
                        "n_types": 4,
                        "n_captured": 1,
                        "recall": 0.25,
                        "n_tokens": 9,
                        "coverage": 0.9,
                    },
                ],
            },
        )
        if sel != "gsae":
            paths["selection"] = str(tmp_path / "sel.json")
        entries.append(
            {
                "name": name,
                "subdomain": "medical",
                "selection": sel,
                "objective": obj,
                "tilt": 0.0 if obj == "erm" else 0.5,
                "sparsity_key": "k",
                "sparsity": k,
                "paths": paths,
            }
        )
    write_json(
        tmp_path / "sel.json",
        {
            "quality": {"precision": 0.7, "recall": 0.4, "token_precision": 0.6, "recall_ceiling": 1.0},
            "n_tokens": 100,
            "n_documents": 5,
            "budget_tokens": 100,
            "pool": {"general_documents": 10, "domain_documents": 5, "seeds": 2},
            "seconds": 1.0,
        },
    )
    return entries


def test_table_and_figures(tmp_path):
    entries = _write_fixture(tmp_path)
    df = ssae_table(entries)
    assert list(df.selection) == ["gsae", "dense", "dense", "dense"]
    row = df[(df.objective == "term")].iloc[0]
    assert row.perplexity_sae_domain == 27.0 and row.perplexity_sae_general == 22.0
    assert row.tail_recall_rare == 0.2 and row.retrieval_precision == 0.7 and row.coverage_rare == 0.3
    assert math.isnan(df.iloc[0].retrieval_precision)
    bins = concept_bins_frame(entries)
    assert len(bins) == 8 and set(bins.label) == {"0", ">=1"}
    ret = retrieval_table({"medical": {"dense": str(tmp_path / "sel.json")}})
    assert ret.iloc[0].precision == 0.7 and ret.iloc[0].pool_general == 10
    pareto_figure(df, "medical", tmp_path / "p.png")
    tail_recall_figure(bins, "medical", tmp_path / "t.png", sparsity=32)
    for f in ("p.png", "t.png"):
        assert (tmp_path / f).read_bytes()[:4] == b"\x89PNG"


def test_tilt_profile_runs_from_erm_to_max():
    from saeflow.studies.ssae.specs import tilt_profile

    # two minibatches of 4: losses 1, 1, 1, 5 -> mean 2, max 5
    losses = np.array([1.0, 1.0, 1.0, 5.0] * 2)
    prof = tilt_profile(losses, [0.0, 1.0, 100.0], batch_size=4)
    assert prof[0].position == 0.0 and prof[0].effective_share == 1.0
    # t = 1: R = log((3e + e^5)/4) ≈ 3.74 -> position (3.74 - 2) / 3 ≈ 0.58
    assert prof[1].risk == pytest.approx(math.log((3 * math.e + math.exp(5)) / 4), rel=1e-9)
    assert 0.5 < prof[1].position < 0.7
    assert prof[2].position > 0.99 and prof[2].effective_share == pytest.approx(0.25, rel=1e-6)


def test_report_rows_are_the_ssaes_then_the_gsae_per_subdomain():
    cfg = _config(
        subdomains=["medical", "social"],
        selections=["dense"],
        objectives={"erm": 0.0, "term": 0.5},
        sparsity={"default": [32]},
    )
    saes = sae_specs(cfg)
    rows = report_rows(cfg, saes)
    names = [r["name"] for r in rows]
    assert names == [v.name for v in ssae_variants(cfg)] + ["gsae", "gsae"]
    gsae_rows = [r for r in rows if r["selection"] == "gsae"]
    assert [r["subdomain"] for r in gsae_rows] == ["medical", "social"]
    assert gsae_rows[0] == {
        "name": "gsae",
        "subdomain": "medical",
        "selection": "gsae",
        "objective": "erm",
        "tilt": 0.0,
        "sparsity_key": "k",
        "sparsity": saes["gsae"]["k"],
    }
    assert rows[0]["objective"] == "erm" and rows[1]["tilt"] == 0.5


def test_tracin_selections_need_a_snapshotted_topk_base_and_budget_their_text_sets():
    cfg = _config(subdomains=["medical"], selections=["dense", "dense_tracin"], sparsity={"default": [32]})
    specs = ssae_specs(cfg)
    assert specs["ssae-medical-dense_tracin-erm-k32"]["train_on"] == "medical.sel-dense_tracin"
    budget = cfg["ssae"]["budget_tokens"]
    assert extraction_budget(cfg, "medical.sel-dense_tracin") == budget
    assert extraction_budget(cfg, "medical.seeds") == budget
    assert extraction_budget(cfg, "medical.cand-dense") == 4 * budget  # tracin.candidates default 4
    cfg["saes"]["gsae"] = {k: v for k, v in cfg["saes"]["gsae"].items() if k != "snapshots"}
    with pytest.raises(ConfigError, match="saes.gsae must be a TopK SAE with snapshots"):
        ssae_specs(cfg)


def test_seed_documents_are_the_first_domain_documents_or_the_queries():
    docs = [{"id": i, "text": f"t{i}", "source": "x"} for i in range(5)]
    assert seed_documents(docs, 2, None) == [{"id": "0", "text": "t0"}, {"id": "1", "text": "t1"}]
    assert seed_documents(docs, 2, ["heart"]) == [{"id": "query-0", "text": "heart"}]


def test_tracin_rerank_orders_candidates_by_score_within_the_budget():
    pool = Candidates(("a", "b", "c", "d"), ("ta", "tb", "tc", "td"), np.array([5, 5, 5, 5]))
    sel = tracin_rerank(pool, ["b", "c", "d"], np.array([0.1, np.nan, 0.7]), 8, "dense_tracin")
    assert sel.indices.tolist() == [3, 1]  # d (0.7), then b (0.1); c (no tokens stored, NaN) last
    assert sel.scores.tolist() == pytest.approx([0.7, 0.1])
    assert sel.n_tokens == 10 and sel.method == "dense_tracin"
    with pytest.raises(DataError, match="'z' is not in the subdomain's pool"):
        tracin_rerank(pool, ["z"], np.array([1.0]), 8, "dense_tracin")
