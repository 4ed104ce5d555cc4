"""saeflow.studies.architectures.analysis: the per-SAE analysis (geometry + absorption) and the architecture
table."""

import json

import pytest
import torch

from saeflow.sae import make_sae
from saeflow.studies.architectures.analysis import (
    analyze_sae,
    architecture_rows,
    architectures_table,
    token_letters,
)

VOCAB = {0: "Ġthe", 1: "Ġcat", 2: ",", 3: "▁Apple", 4: "ing", 5: "Ġ42"}


class _Tok:
    """convert_ids_to_tokens of a tiny byte-level BPE-style vocabulary."""

    def convert_ids_to_tokens(self, ids):
        return [VOCAB[i] for i in ids]


def test_token_letters():
    assert token_letters([0, 1, 2, 3, 4, 5, 0], _Tok()) == ["t", "c", None, "a", "i", None, "t"]


def _letter_data():
    """A TopK SAE and 120 rows: 40 per letter a, b, c along the first three axes."""
    torch.manual_seed(0)
    d = 8
    sae = make_sae({"architecture": "topk", "d_in": d, "d_sae": 16, "k": 2}, seed=0)
    x = torch.cat([torch.eye(d)[i] * 3 + 0.2 * torch.randn(40, d) for i in range(3)])
    return sae, x, [c for c in "abc" for _ in range(40)]


def test_analyze_sae_on_letter_data():
    sae, x, letters = _letter_data()
    out = analyze_sae(sae, x, letters, distinct_threshold=0.5, absorption={"min_train": 3})
    assert len(out.geometry["max_abs_cos"]) == 16
    assert 0 <= out.geometry["distinct_fraction"] <= 1
    assert set(out.absorption["per_letter"]) <= {"a", "b", "c"} and out.absorption["n_letter_tokens"] == 120
    assert 0 <= out.absorption["absorption"] <= 1
    json.dumps(out.to_dict())  # JSON-ready


def test_architecture_rows_join_evaluations_and_analyses(tmp_path):
    ev = {"sae": "gsae", "eval_set": "general", "l0": 8.0, "fvu": 0.3, "delta_ce": 0.1, "dead_fraction": 0.0}
    an = {"geometry": {"mean_max_abs_cos": 0.4, "distinct_fraction": 0.9}, "absorption": {"absorption": 0.2}}
    (tmp_path / "e.json").write_text(json.dumps(ev))
    (tmp_path / "a.json").write_text(json.dumps(an))
    rows = architecture_rows(
        {"gsae": "topk"}, {("gsae", "general"): tmp_path / "e.json"}, {"gsae": tmp_path / "a.json"}
    )
    df = architectures_table(rows)
    assert df.iloc[0].to_dict() == pytest.approx(
        {
            "architecture": "topk",
            "sae": "gsae",
            "eval_set": "general",
            "l0": 8.0,
            "fvu": 0.3,
            "delta_ce": 0.1,
            "mean_max_cos": 0.4,
            "distinct_fraction": 0.9,
            "absorption": 0.2,
            "saebench_full_absorption": float("nan"),
            "saebench_absorption_fraction": float("nan"),
            "saebench_ksparse_f1": float("nan"),
            "dead_fraction": 0.0,
        },
        nan_ok=True,
    )


def test_rows_carry_the_saebench_protocol_absorption(tmp_path):
    ev = {"l0": 8.0, "fvu": 0.3}
    icl = {"full_absorption": 0.1, "absorption_fraction": 0.2, "ksparse_f1": 0.7}
    an = {"geometry": {"mean_max_abs_cos": 0.4, "distinct_fraction": 0.9}, "absorption": {"absorption": 0.03}}
    (tmp_path / "e.json").write_text(json.dumps(ev))
    (tmp_path / "a.json").write_text(json.dumps({**an, "absorption_icl": icl}))
    rows = architecture_rows(
        {"gsae": "topk"}, {("gsae", "e"): tmp_path / "e.json"}, {"gsae": tmp_path / "a.json"}
    )
    row = architectures_table(rows).iloc[0]
    assert row["absorption"] == 0.03 and row["saebench_full_absorption"] == 0.1
    assert row["saebench_absorption_fraction"] == 0.2 and row["saebench_ksparse_f1"] == 0.7


def test_analyze_sae_with_a_letter_set():
    from saeflow.absorption_icl import LetterSet

    sae, x, letters = _letter_data()
    d = x.shape[1]
    probes = {c: (torch.eye(d)[i].double().numpy(), -1.0) for i, c in enumerate("abc")}
    train = torch.arange(120) % 5 != 0
    ls = LetterSet(x, [f" {c}x" for c in letters], letters, train.numpy(), probes)
    out = analyze_sae(
        sae, x, letters, absorption={"min_train": 3}, letter_set=ls, absorption_icl={"min_letters": 3}
    )
    icl = out.absorption_icl
    assert icl["n_letters"] == 3 and 0 <= icl["full_absorption"] <= 1 and 0 <= icl["absorption_fraction"] <= 1
    json.dumps(out.to_dict())


def test_relu_row_carries_its_final_l1_coefficient(tmp_path):
    ev = {"l0": 31.0, "fvu": 0.5}
    an = {"geometry": {"mean_max_abs_cos": 0.4, "distinct_fraction": 0.9}, "absorption": {"absorption": 0.2}}
    relu = {"saeflow": {"sae": {"architecture": "relu", "l1_coefficient": 2.48}}}
    topk = {"saeflow": {"sae": {"architecture": "topk", "l1_coefficient": 5.0}}}
    for name, obj in (("e", ev), ("a", an), ("r", relu), ("t", topk)):
        (tmp_path / f"{name}.json").write_text(json.dumps(obj))
    rows = architecture_rows(
        {"arch-relu": "relu", "gsae": "topk"},
        {("arch-relu", "general"): tmp_path / "e.json", ("gsae", "general"): tmp_path / "e.json"},
        {"arch-relu": tmp_path / "a.json", "gsae": tmp_path / "a.json"},
        {"arch-relu": tmp_path / "r.json", "gsae": tmp_path / "t.json"},
    )
    table = architectures_table(rows).set_index("architecture")
    assert table.loc["relu", "l1_coefficient"] == 2.48
    assert table["l1_coefficient"].isna()["topk"]  # a TopK SAE has no L1 coefficient to report
