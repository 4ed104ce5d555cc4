"""Table glue: rows of both attributions and of compressed SAEs, and where the paper's numbers go."""

from saeflow.studies.bias_in_bios.study import gap_note, main_table, paper_reference, paper_row


def _row(method):
    return {"method": method, "profession_acc": 0.8, "gender_acc": 0.6, "worst_group_acc": 0.5,
            "gender_probe_acc": 0.7}  # fmt: skip


def test_main_table_holds_both_attributions_and_the_compressed_rows():
    base = [_row("Original"), _row("Oracle")]
    gsae = {"rows": [_row(m) for m in ("GSAE SHIFT", "GSAE SHIFT (IG)", "Random ablation (GSAE)")]}
    comp = {"rows": [_row(m) for m in ("GSAE comp. 1/8 SHIFT", "GSAE comp. 1/8 SHIFT (IG)",
                                         "Random ablation (GSAE comp. 1/8)")]}  # fmt: skip
    assert main_table(base, [gsae, comp]).method.tolist() == [
        "Original",
        "Random ablation (GSAE)",
        "GSAE SHIFT",
        "GSAE SHIFT (IG)",
        "GSAE comp. 1/8 SHIFT",
        "GSAE comp. 1/8 SHIFT (IG)",
        "Oracle",
    ]


def test_paper_numbers_go_beside_the_ig_rows():
    ref = paper_reference()
    both = {"GSAE SHIFT", "GSAE SHIFT (IG)", "GSAE SHIFT + retrain", "GSAE SHIFT (IG) + retrain"}
    assert paper_row("GSAE SHIFT (IG)", both, ref) == ref["GSAE SHIFT"]
    assert paper_row("GSAE SHIFT (IG) + retrain", both, ref) == ref["GSAE SHIFT + retrain"]
    assert paper_row("GSAE SHIFT", both, ref) is None
    assert paper_row("GSAE SHIFT", {"GSAE SHIFT"}, ref) == ref["GSAE SHIFT"]  # linear only: as before
    assert paper_row("Original", both, ref) == ref["Original"]
    assert paper_row("GSAE comp. 1/8 SHIFT (IG)", both, ref) is None


def test_gap_note_names_each_attribution():
    gap = {"total": 2.0, "latents": 1.0, "error": 1.0, "removed": 0.5}
    shift = {"label": "GSAE", "latents": [1, 2], "gender_gap": gap, "attributions": {  # as JSON stores them
        "ig": {"latents": [3, 4], "gender_gap": {**gap, "removed": 0.2}},
        "linear": {"latents": [1, 2], "gender_gap": gap}}}  # fmt: skip
    note = gap_note([shift])
    assert "GSAE: latents 50%, error term 50%, the 2 ablated latents 25%, the 2 ablated latents (IG) 10%" in (
        note
    )
    old = {"label": "GSAE", "latents": [1, 2], "gender_gap": gap}  # a result written before attributions
    assert "the 2 ablated latents 25%" in gap_note([old])
