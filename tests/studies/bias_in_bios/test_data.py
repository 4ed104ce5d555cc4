"""Bias-in-Bios data: the three schemas, profession masking, deterministic set construction."""

import sys

import pandas as pd
import pytest

from saeflow.errors import AssetError, ConfigError, DataError
from saeflow.studies.bias_in_bios.data import (
    LABHC_PROFESSIONS,
    BiosSource,
    MaskSpec,
    SetSizes,
    build_sets,
    detect_schema,
    mask_profession,
    prepare_pool,
    read_bios,
    to_bios_frame,
)


def make_pool(counts: dict[str, int]) -> pd.DataFrame:
    """A prepared pool with `counts[group]` distinct bios per group (A = surgeon, B = nurse)."""
    rows = []
    for group, n in counts.items():
        role, gender = group.split("/")
        prof = "surgeon" if role == "A" else "nurse"
        rows += [
            {
                "text": f"bio {i} of a {gender} {prof} who works long hours",
                "profession": prof,
                "gender": gender,
                "schema": "find",
            }
            for i in range(n)
        ]
    return prepare_pool(pd.DataFrame(rows), ["surgeon", "nurse"])


FULL = {"A/M": 50, "A/F": 20, "B/M": 20, "B/F": 50}


# --------------------------------------------------------------------------- reading


def test_labhc_indices_match_the_hub_dataset():
    assert LABHC_PROFESSIONS[21] == "professor" and LABHC_PROFESSIONS[13] == "nurse"
    assert LABHC_PROFESSIONS[25] == "surgeon" and len(LABHC_PROFESSIONS) == 28


def test_three_schemas_become_one_frame():
    labhc = pd.DataFrame(
        {"hard_text": ["She  teaches.", "He treats."], "profession": [21, 13], "gender": [1, 0]}
    )
    find = pd.DataFrame({"text": ["a", "b"], "profession": ["Surgeon", "nurse"], "gender": ["M", "F"]})
    bug = pd.DataFrame(
        {
            "sentence_text": ["x his", "y her", "z they"],
            "profession": ["nurse"] * 3,
            "g": ["his", "her", "their"],
        }
    )
    a, b, c = to_bios_frame(labhc), to_bios_frame(find), to_bios_frame(bug)
    assert a.to_dict("list") == {
        "text": ["She teaches.", "He treats."],
        "profession": ["professor", "nurse"],
        "gender": ["F", "M"],
        "schema": ["labhc", "labhc"],
    }
    assert b.profession.tolist() == ["surgeon", "nurse"] and b.gender.tolist() == ["M", "F"]
    assert c.gender.tolist() == ["M", "F"]  # "their" says nothing about gender: dropped
    assert to_bios_frame(labhc, professions=["nurse"]).text.tolist() == ["He treats."]
    with pytest.raises(
        DataError,
        match=r"profession\(s\) dentist do not occur in column profession; professions there: nurse, ",
    ):
        to_bios_frame(labhc, professions=["nurse", "dentist"])
    with pytest.raises(DataError, match="cannot tell the schema"):
        detect_schema(["body", "label"])


def test_read_local_jsonl_with_split(tmp_path):
    path = tmp_path / "bios.jsonl"
    pd.DataFrame(
        {
            "split": ["train", "test"],
            "text": ["a bio", "b bio"],
            "profession": ["nurse", "nurse"],
            "gender": ["F", "M"],
        }
    ).to_json(path, orient="records", lines=True)
    assert len(read_bios(str(path))) == 2
    only = read_bios({"path": str(path), "split": "test"})
    assert only.text.tolist() == ["b bio"]


def test_hub_without_datasets_is_an_asset_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(AssetError, match="datasets"):
        read_bios("hf:LabHC/bias_in_bios")


def test_bad_source_config():
    with pytest.raises(ConfigError, match="schema"):
        BiosSource.from_dict({"path": "x.jsonl", "schema": "csv"})


# --------------------------------------------------------------------------- masking


def test_mask_singular_plural_extra_and_case():
    mask = MaskSpec(extra_words={"nurse": ("nursing",)})
    text = "The nurse told two Nurses about nursing school; NURSE-led care. Nursery rhymes, nurse's cap."
    assert mask_profession(text, "nurse", mask) == (
        "The person told two People about person school; PERSON-led care. Nursery rhymes, person's cap."
    )
    assert mask_profession("An associate Professor and professors", "professor") == (
        "An associate Person and people"
    )
    assert mask_profession("a software  engineer", "software_engineer") == "a person"


def test_masking_mode_auto_only_for_bug():
    bios = pd.DataFrame(
        {
            "text": ["the nurse said she was tired today", "the surgeon said he was tired today"],
            "profession": ["nurse", "surgeon"],
            "gender": ["F", "M"],
            "schema": "bug",
        }
    )
    masked = prepare_pool(bios, ["surgeon", "nurse"])
    assert "nurse" not in " ".join(masked.text) and "surgeon" not in " ".join(masked.text)
    kept = prepare_pool(bios.assign(schema="find"), ["surgeon", "nurse"])
    assert "nurse" in " ".join(kept.text)
    never = prepare_pool(bios, ["surgeon", "nurse"], MaskSpec(mode="never"))
    assert "nurse" in " ".join(never.text)


def test_pool_drops_conflicting_texts_and_duplicates():
    bios = pd.DataFrame({
        "text": ["same text about work here", "same text about work here", "dup dup dup dup dup dup",
                 "dup dup dup dup dup dup", "short", "a fine bio of a nurse person"],
        "profession": ["nurse", "surgeon", "nurse", "nurse", "nurse", "nurse"],
        "gender": ["F", "M", "F", "F", "F", "M"], "schema": "find"})  # fmt: skip
    pool = prepare_pool(bios, ["surgeon", "nurse"])
    assert pool.text.tolist() == ["dup dup dup dup dup dup", "a fine bio of a nurse person"]
    assert pool.label.tolist() == [1, 1] and pool.group.tolist() == ["B/F", "B/M"]
    with pytest.raises(DataError, match="profession 'dentist' does not occur"):
        prepare_pool(bios, ["dentist", "nurse"])
    with pytest.raises(ConfigError, match="two different"):
        prepare_pool(bios, ["nurse", "nurse"])


# --------------------------------------------------------------------------- sets


def test_set_counts_and_disjoint_test():
    sets = build_sets(
        make_pool(FULL), SetSizes(ambiguous_per_profession=30, test_per_group=10, oracle_per_group=10), seed=0
    )
    assert sets.stats() == {
        "ambiguous": {"A/M": 30, "B/F": 30},
        "test": {"A/F": 10, "A/M": 10, "B/F": 10, "B/M": 10},
        "oracle": {"A/F": 10, "A/M": 10, "B/F": 10, "B/M": 10},
    }
    test_ids = set(sets.test.id)
    assert not test_ids & set(sets.ambiguous.id) and not test_ids & set(sets.oracle.id)
    amb = sets.ambiguous
    assert (amb[amb.label == 0].gender == "M").all() and (amb[amb.label == 1].gender == "F").all()
    assert set(sets.ambiguous.profession) == {"surgeon", "nurse"}


def test_sets_are_deterministic_and_seeded():
    pool = make_pool(FULL)
    sizes = SetSizes(20, 10, 10)
    a, b = build_sets(pool, sizes, seed=3), build_sets(pool.sample(frac=1.0, random_state=1), sizes, seed=3)
    for x, y in zip(a, b, strict=True):
        assert x.id.tolist() == y.id.tolist()  # input order does not matter
    c = build_sets(pool, sizes, seed=4)
    assert a.test.id.tolist() != c.test.id.tolist()


def test_too_small_group_names_group_available_and_requested():
    pool = make_pool({**FULL, "A/F": 15})
    with pytest.raises(DataError) as err:
        build_sets(pool, SetSizes(30, 10, 10), seed=0)
    msg = str(err.value)
    assert "surgeon/F" in msg and "has 15 bios" in msg and "requested 20" in msg
    with pytest.raises(DataError, match=r"surgeon/M .* has 50 bios; requested 51"):
        build_sets(make_pool(FULL), SetSizes(41, 10, 5), seed=0)


# --------------------------------------------------------------------------- registry entries and tables


def _config(**bib):
    return {
        "seed": 0,
        "corpora": {"general": {}},
        "ssae": {"general_corpus": "general"},
        "saes": {"gsae": {"architecture": "topk", "train_on": "general.train", "k": 32, "lr": 4e-4}},
        "bias_in_bios": {
            "ssae": {"name": "bib_ssae", "base_sae": "gsae", "budget_tokens": 100, "finetune": {"lr": 1e-4}},
            "saes": [
                {"label": "GSAE", "sae": "gsae"},
                {"label": "SSAE", "sae": "bib_ssae"},
                {"label": "OrtSAE", "sae": "architecture:ortsae"},
            ],
            **bib,
        },
    }


def test_bias_ssae_spec_and_study_saes():
    from saeflow.registry import sae_specs
    from saeflow.studies.bias_in_bios.specs import bias_ssae_specs, selected_textset_budget, study_saes

    config = _config()
    assert bias_ssae_specs(config, config["saes"]) == {
        "bib_ssae": {
            "architecture": "topk",
            "k": 32,
            "lr": 1e-4,
            "train_on": "biasbios.retrieved",
            "init_from": "gsae",
            "eval_sets": ["general"],
        }
    }
    specs = sae_specs(config)
    assert specs["bib_ssae"]["init_from"] == "gsae"
    assert study_saes(config, specs) == [("GSAE", "gsae"), ("SSAE", "bib_ssae")]  # no ortsae in the registry
    specs["ort"] = {"architecture": "ortsae"}
    assert study_saes(config, specs)[-1] == ("OrtSAE", "ort")
    assert selected_textset_budget(config, "biasbios.retrieved") == 100
    assert selected_textset_budget(config, "general.train") is None

    tagged = _config(tag="_sn")
    assert list(bias_ssae_specs(tagged, tagged["saes"])) == ["bib_ssae_sn"]
    assert bias_ssae_specs(tagged, tagged["saes"])["bib_ssae_sn"]["train_on"] == "biasbios_sn.retrieved"
    assert study_saes(tagged, sae_specs(tagged))[1] == ("SSAE", "bib_ssae_sn")

    off = _config(ssae=None)
    assert bias_ssae_specs(off, off["saes"]) == {}
    assert study_saes(off, sae_specs(off)) == [("GSAE", "gsae")]
    with pytest.raises(ConfigError, match="unknown SAE 'nope'"):
        study_saes(_config(saes=[{"label": "X", "sae": "nope"}]), specs)


def test_markdown_table_puts_paper_numbers_in_their_own_columns():
    from saeflow.studies.bias_in_bios.study import PAPER_LABEL, main_table, markdown_table

    def r(method, p):
        return {
            "method": method,
            "profession_acc": p,
            "gender_acc": 0.6,
            "worst_group_acc": p - 0.1,
            "gender_probe_acc": 0.7,
            "acc_A/M": p,
        }

    shift = {
        "rows": [
            r("Random ablation (GSAE)", 0.7),
            r("Random ablation (GSAE) + retrain", 0.7),
            r("GSAE SHIFT", 0.8),
            r("GSAE SHIFT + retrain", 0.85),
        ],
        "scr": [],
    }
    table = main_table([r("Original", 0.7), r("Oracle", 0.9)], [shift])
    assert table.method.tolist()[0] == "Original" and table.method.tolist()[-1] == "Oracle"
    md = markdown_table(table, {"professions": {"A": "professor", "B": "nurse"}, "source": "x"}, "m", 3, 20)
    assert f"{PAPER_LABEL}: worst-group" in md
    assert "| GSAE SHIFT | 80.0 | 60.0 | 70.0 | 70.0 | 88.5 | 54.0 | 76.0 |" in md
    assert "| Random ablation (GSAE) | 70.0 | 60.0 | 60.0 | 70.0 |  |  |  |" in md


# --------------------------------------------------------------------------- users' files, by configuration


def _user_csvs(tmp_path, gender=("M", "F"), columns=("Bio", "Profession", "Gender")):
    """A scrubbed-bios layout: Bio, Profession, Gender (M/F) split across train/dev/test files."""
    paths = []
    for split, n in (("train", 6), ("dev", 2), ("test", 2)):
        rows = [
            {
                columns[0]: f"{split} bio {i} of a {p} who works at the hospital every day",
                columns[1]: p.title(),
                columns[2]: gender[i % 2],
            }
            for i in range(n)
            for p in ("surgeon", "nurse", "dentist")
        ]
        path = tmp_path / f"{split}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        paths.append(str(path))
    return paths


def test_users_csvs_load_by_configuration_alone(tmp_path):
    paths = _user_csvs(tmp_path)
    bios = read_bios({"path": paths, "text_field": "Bio"}, professions=["surgeon", "nurse"])
    assert len(bios) == 2 * (6 + 2 + 2) and set(bios.profession) == {"surgeon", "nurse"}
    assert set(bios.gender) == {"M", "F"} and (bios["schema"] == "find").all()
    every = read_bios(
        {"path": paths, "text_field": "Bio", "profession_field": "Profession", "gender_field": "Gender"}
    )
    assert len(every) == 3 * 10
    # the config section that says so is valid against the study's schema
    from saeflow.config import validate_config
    from saeflow.studies import study_schema

    validate_config(
        {
            "data": {
                "path": paths,
                "text_field": "Bio",
                "gender_labels": {"male": ["M"], "female": ["F"]},
                "split": ["train", "dev"],
            }
        },
        study_schema("bias_in_bios"),
    )


def test_unmapped_columns_say_how_to_map(tmp_path):
    paths = _user_csvs(tmp_path)
    with pytest.raises(
        DataError, match=r"train\.csv: cannot tell the schema .*Bio, Profession, Gender.*text_field"
    ):
        read_bios({"path": paths})
    with pytest.raises(
        DataError, match=r"no column 'Biography' \(bias_in_bios\.data\.text_field.*columns are: Bio"
    ):
        read_bios({"path": paths, "text_field": "Biography"})


def test_gender_label_mappings(tmp_path):
    reversed_ = read_bios(
        {
            "path": _user_csvs(tmp_path, gender=(1, 0)),
            "text_field": "Bio",
            "gender_labels": {"male": [1], "female": [0]},
        }
    )
    first = reversed_[reversed_.text.str.contains("bio 0 ")]
    assert set(first.gender) == {"M"}  # label 1 = male here, not LabHC's 0
    words = read_bios({"path": _user_csvs(tmp_path, gender=("Man", "WOMAN")), "text_field": "Bio"})
    assert set(words.gender) == {"M", "F"}
    with pytest.raises(DataError, match=r"column Gender does not give both genders.*gender_labels"):
        read_bios({"path": _user_csvs(tmp_path, gender=("H", "W")), "text_field": "Bio"})
    with pytest.raises(ConfigError, match="is both male and female"):
        BiosSource.from_dict({"path": "x.csv", "gender_labels": {"male": ["a"], "female": ["A"]}})


def test_split_column_and_profession_codes(tmp_path):
    path = tmp_path / "bios.tsv"
    pd.DataFrame(
        {
            "fold": ["train", "dev", "test", "train"],
            "txt": ["bio one here", "bio two", "bio 3", "bio 4"],
            "job": [3, 7, 3, 9],
            "sex": ["F", "M", "M", "F"],
        }
    ).to_csv(path, sep="\t", index=False)
    src = {
        "path": str(path),
        "split": ["train", "dev"],
        "split_field": "fold",
        "text_field": "txt",
        "profession_field": "job",
        "gender_field": "sex",
        "profession_labels": {3: "nurse", 7: "Surgeon"},
    }
    bios = read_bios(src)
    assert bios.text.tolist() == ["bio one here", "bio two"] and bios.profession.tolist() == [
        "nurse",
        "surgeon",
    ]
    with pytest.raises(DataError, match=r"no 'split' column .*split_field"):
        read_bios({**src, "split_field": "split"})


def test_table_prints_group_sizes_interval_and_explains_negative_shares():
    from saeflow.studies.bias_in_bios.study import gap_note, main_table, markdown_table

    def r(method, p):
        return {
            "method": method,
            "profession_acc": p,
            "gender_acc": 0.6,
            "worst_group_acc": p - 0.1,
            "worst_group_ci_low": p - 0.2,
            "worst_group_ci_high": p,
            "gender_probe_acc": 0.7,
            "acc_A/M": p,
            "n_A/M": 30,
            "n_A/F": 30,
            "n_B/M": 30,
            "n_B/F": 30,
        }

    table = main_table([r("Original", 0.7), r("Oracle", 0.9)], [])
    assert {"worst_group_ci_low", "worst_group_ci_high", "n_A/F"} <= set(table.columns)
    note = gap_note(
        [
            {
                "label": "GSAE",
                "latents": [1, 2],
                "gender_gap": {"total": 1.0, "latents": -0.05, "error": 1.05, "removed": 0.1},
            }
        ]
    )
    assert "-5%" in note and "negative share" in note
    md = markdown_table(
        table, {"professions": {"A": "professor", "B": "nurse"}, "source": "x"}, "m", 3, 20, note=note
    )
    assert "| Original | 70.0 | 60.0 | 60.0 [50.0, 70.0] | 70.0 |" in md
    assert "professor/M 30, professor/F 30, nurse/M 30, nurse/F 30" in md and "3.3 points" in md


def test_worst_group_interval_is_seeded_and_brackets_the_estimate():
    import numpy as np

    from saeflow.studies.bias_in_bios.debias import worst_group_interval

    group = np.repeat(["A/M", "A/F", "B/M", "B/F"], 30)
    label = (np.char.startswith(group.astype(str), "B")).astype(int)
    pred = np.where(np.arange(120) % 5 == 0, 1 - label, label)  # 80% right in every group
    lo, hi = worst_group_interval(pred, label, group, seed=3)
    assert (lo, hi) == worst_group_interval(pred, label, group, seed=3)
    assert lo < 0.8 and 0.7 < hi <= 0.9
