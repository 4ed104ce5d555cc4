"""Protein readers (gor4, FASTA, UniProt TSV), the seeded split, and per-residue extraction through UniRep."""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saeflow.activations import ActivationStore
from saeflow.errors import AssetError, DataError
from saeflow.models.unirep import AA_TO_ID, MLSTMNet, UniRepModel
from saeflow.studies.protein.data import (
    ProteinRecord,
    entry_labels,
    read_fasta,
    read_gor4,
    read_uniprot_tsv,
    split_of,
    split_records,
)
from saeflow.studies.protein.extract import extract_residue_activations

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "data"

GOR_SEQ = """!1ABCa SOME PROTEIN    12
MKVLAAGICWHE@
!2XYZb                 3
MAH@
"""
GOR_OBS = """!1ABCa SOME PROTEIN    12
CCHHHHHCCEEC@
!2XYZb                 3
CCC@
"""


def write_gor(tmp_path, seq=GOR_SEQ, obs=GOR_OBS):
    (tmp_path / "new-gor4.seq").write_text(seq)
    (tmp_path / "new-gor4.obs").write_text(obs)
    return tmp_path


def test_gor4_reader(tmp_path):
    records = read_gor4(write_gor(tmp_path))
    assert records == [
        ProteinRecord("1ABCa", "MKVLAAGICWHE", "CCHHHHHCCEEC"),
        ProteinRecord("2XYZb", "MAH", "CCC"),
    ]
    assert read_gor4(tmp_path, limit=1) == records[:1]
    with pytest.raises(DataError, match="new-gor4.seq.*has 11 letters; header says 12"):
        read_gor4(write_gor(tmp_path, seq=GOR_SEQ.replace("MKVLAAGICWHE", "MKVLAAGICWH")))
    with pytest.raises(DataError, match="not terminated by '@'"):
        read_gor4(write_gor(tmp_path, seq=GOR_SEQ.replace("MAH@", "MAH")))
    with pytest.raises(DataError, match="does not match"):
        read_gor4(write_gor(tmp_path, obs=GOR_OBS.replace("2XYZb", "2XYZc")))
    with pytest.raises(DataError, match="does not exist"):
        read_gor4(tmp_path / "none")


def test_fasta_reader(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_text(">sp|P1|A desc\nMKV\nLAA*\n\n>b\nmah\n")
    assert read_fasta(path) == [ProteinRecord("sp|P1|A", "MKVLAA"), ProteinRecord("b", "MAH")]
    path.write_text(">t1\nMKVL\nSS11\n>t2\nMA\nHH\n")  # TMbed layout: sequence line + label line
    assert read_fasta(path, labels=True)[1] == ProteinRecord("t2", "MA", "HH")
    path.write_text(">t1\nMKVL\nSS1\n")
    with pytest.raises(DataError, match=r"x\.fasta: record 't1' needs one sequence line and one label line"):
        read_fasta(path, labels=True)
    path.write_text("MKV\n")
    with pytest.raises(DataError, match=r"x\.fasta:1: sequence before the first '>'"):
        read_fasta(path)


def test_uniprot_tsv(tmp_path):
    path = tmp_path / "u.tsv"
    seq = "M" + "A" * 40
    path.write_text(
        "Entry\tSequence\tZinc finger\tTransmembrane\tBinding site\n"
        f'P1\t{seq}\tZN_FING 3..25; /note="C2H2-type 1"; /evidence="ECO:0000255"; ZN_FING 30..35; '
        f'/note="C2H2-type 2"\tTRANSMEM 10..12; /note="Helical"\tBINDING 7; /ligand="Zn(2+)"\n'
        f"P2\tMKV\t\t\t\n"
    )
    entries = read_uniprot_tsv(path)
    assert [e.id for e in entries] == ["P1", "P2"] and entries[1].features == ()
    zf = [f for f in entries[0].features if f.type == "Zinc finger"]
    assert [(f.start, f.end, f.note) for f in zf] == [(3, 25, "C2H2-type 1"), (30, 35, "C2H2-type 2")]
    assert [(f.type, f.start, f.end) for f in entries[0].features[2:]] == [
        ("Transmembrane", 10, 12),
        ("Binding site", 7, 7),
    ]
    marks = entry_labels(entries[0], "Transmembrane")
    assert [i for i, m in enumerate(marks) if m] == [9, 10, 11]
    path.write_text("Entry\tSequence\tHelix\nP1\tMKV\tHELIX 2..9\n")
    with pytest.raises(DataError, match=r"u\.tsv:2: Helix range 2\.\.9 outside the 3 residues"):
        read_uniprot_tsv(path)
    path.write_text("Accession\tSeq\n")
    with pytest.raises(DataError, match="needs columns 'Entry' and 'Sequence'"):
        read_uniprot_tsv(path)


def test_split_is_seeded_and_stable():
    records = [ProteinRecord(f"chain{i}", "MK") for i in range(2000)]
    splits = split_records(records, seed=0)
    sizes = [len(s) for s in splits]
    assert sum(sizes) == 2000 and 1500 < sizes[0] < 1700 and 120 < sizes[1] < 280 and 120 < sizes[2] < 280
    assert splits == split_records(list(reversed(records))[::-1], seed=0)
    assert split_of("chain7", 0) == split_of("chain7", 0)
    assert [r.id for r in split_records(records, seed=1).test] != [r.id for r in splits.test]
    with pytest.raises(DataError, match="fractions"):
        split_of("x", 0, (0.5, 0.5, 0.5))


def test_unirep_extraction_stores_residues_only(tmp_path):
    torch.manual_seed(0)
    model = UniRepModel(MLSTMNet(d=6, n_cells=2))
    records = [ProteinRecord("a", "MKVLAAG"), ProteinRecord("b", "WYPQ"), ProteinRecord("c", "MAHHEK")]
    manifest = extract_residue_activations(
        model, records, 1, tmp_path / "acts", max_tokens=14, batch_size=2, shard_rows=5, dtype="float32"
    )
    assert manifest.n_tokens == 14 and manifest.docs == ("a", "b", "c") and len(manifest.shards) == 3
    assert manifest.extra["kind"] == "unirep"
    shards = [load_file(str(tmp_path / "acts" / s.file)) for s in manifest.shards]
    rows = {k: torch.cat([s[k] for s in shards]) for k in shards[0]}
    assert rows["position"].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 0, 1, 2]  # "c" cut at 3 residues
    assert rows["doc_index"].tolist() == [0] * 7 + [1] * 4 + [2] * 3
    assert rows["token_ids"].tolist() == [AA_TO_ID[a] for a in "MKVLAAG" + "WYPQ" + "MAH"]
    alone = model.hidden(model.batch(model.encode(["WYPQ"])), 1)[0, 1:5]  # start token excluded
    torch.testing.assert_close(rows["acts"][7:11], alone)
    assert ActivationStore(tmp_path / "acts" / "manifest.json").n_tokens == 14


@pytest.fixture(scope="module")
def gor4_dir():
    from saeflow.studies.protein.assets import fetch_protein_assets

    resources = Path(os.environ.get("SAEFLOW_TEST_RESOURCES", ROOT / "resources"))
    try:
        return fetch_protein_assets(resources).gor4_dir
    except AssetError as err:
        pytest.skip(f"gor4 sdist not obtainable: {err}")


def test_real_gor4_database(gor4_dir):
    records = read_gor4(gor4_dir)
    assert len(records) == 13_244 and len({r.id for r in records}) == 13_244  # 20 repeated ids made unique
    assert sum(len(r.sequence) for r in records) == 3_538_510
    assert records[0].id == "101Ma" and records[0].labels.startswith("CCCCHHHH")


@pytest.mark.skipif(
    not (SHARED / "tmbed_transmembrane" / "alpha.fasta").is_file(), reason="../shared/data absent"
)
def test_real_tmbed_fasta():
    records = read_fasta(SHARED / "tmbed_transmembrane" / "alpha.fasta", labels=True)
    assert len(records) > 100 and all(len(r.labels) == len(r.sequence) for r in records)


def test_long_records_are_cut_to_what_the_model_stores(tmp_path):
    from saeflow.studies.protein.concepts import ConceptLabels, concept_scores
    from saeflow.studies.protein.extract import select_records, stored_latents

    torch.manual_seed(0)
    model = UniRepModel(MLSTMNet(d=6, n_cells=1), max_length=6)  # start + 4 residues + stop
    records = [ProteinRecord("a", "MKVLAAG", "CHHHHCC"), ProteinRecord("b", "WY", "CC")]
    chosen = select_records(model, records, max_tokens=100)
    assert [(r.sequence, r.labels) for r in chosen] == [("MKVL", "CHHH"), ("WY", "CC")]
    manifest = extract_residue_activations(model, records, 0, tmp_path / "acts", max_tokens=100)
    assert manifest.n_tokens == 6
    latents = stored_latents(tmp_path / "acts" / "manifest.json")
    assert latents.position.tolist() == [0, 1, 2, 3, 0, 1] and latents.doc_index.tolist() == [
        0,
        0,
        0,
        0,
        1,
        1,
    ]
    scores = concept_scores(latents.acts, ConceptLabels.build(chosen, names=["helix"]), torch.ones(6))
    assert scores.n_residues == 6
    with pytest.raises(DataError, match="6 activation rows for 9 labelled residues"):
        concept_scores(latents.acts, ConceptLabels.build(records, names=["helix"]), torch.ones(6))
