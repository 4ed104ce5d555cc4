"""summary.md: whatever subset of tables a run made, each with the papers' numbers beside it."""

import pandas as pd

from saeflow.reference import references_for
from saeflow.studies import all_references
from saeflow.summary import summary_markdown, write_summary

REFERENCES = all_references()


def _table(path, title, df):
    path.write_text(f"# {title}\n\n" + df.to_markdown(index=False) + "\n")
    return path


def test_reference_numbers_are_the_papers():
    ssae = next(r for r in REFERENCES if r.key == "ssae_shift_pythia").frame().set_index("method")
    # docs/methods.md: headline +12.5 points worst-group, SSAE SHIFT 88.5 vs GSAE SHIFT 76.0
    assert ssae.loc["SSAE SHIFT", "worst_group_acc_%"] - ssae.loc["GSAE SHIFT", "worst_group_acc_%"] == 12.5
    assert list(ssae.loc["Oracle"]) == [93.0, 49.4, 91.9]
    assert len({r.key for r in REFERENCES}) == len(REFERENCES)


def test_references_match_by_table_name():
    assert [r.key for r in references_for("bias_in_bios_shift", REFERENCES)] == [
        "ssae_shift_pythia",
        "shift_gemma",
    ]
    assert [r.key for r in references_for("boosted_domains", REFERENCES)] == ["boosted"]
    assert references_for("core_metrics", REFERENCES) == []


def test_summary_of_any_subset(tmp_path):
    core = _table(tmp_path / "core_metrics.md", "Core metrics", pd.DataFrame({"sae": ["gsae"], "l0": [31.5]}))
    bib = _table(
        tmp_path / "bias_in_bios.md", "Bias in Bios", pd.DataFrame({"method": ["Original"], "worst": [0.5]})
    )
    text = summary_markdown([core, bib], base_dir=tmp_path)
    assert text.index("## Core metrics") < text.index("## Bias in Bios") < text.index("88.5")
    assert "No paper reports numbers for this table." in text  # core metrics
    assert "| gsae" in text and "31.5" in text
    assert "Paper numbers without a table in this run" in text and "Boosted" in text

    only_core = summary_markdown([core], base_dir=tmp_path)
    assert "88.5" not in only_core.split("Paper numbers without a table")[0]
    assert "No tables were produced" in summary_markdown([])


def test_write_summary_links_figures(tmp_path):
    core = _table(tmp_path / "core_metrics.md", "Core metrics", pd.DataFrame({"x": [1]}))
    fig = tmp_path / "figures" / "geometry.png"
    out = tmp_path / "tables" / "summary.md"
    write_summary(out, [core], [fig])
    assert "![geometry](../figures/geometry.png)" in out.read_text()


def test_a_reference_is_printed_once(tmp_path):
    a = _table(tmp_path / "ssae.md", "SSAE", pd.DataFrame({"x": [1]}))
    b = _table(tmp_path / "ssae_retrieval.md", "Retrieval", pd.DataFrame({"x": [2]}))
    text = summary_markdown([a, b], base_dir=tmp_path)
    assert (
        text.count("Dense+TracIn") == 1
        and "Paper reference: SSAE: data selection and Tilted ERM, above." in text
    )
