"""radlabels reading (a tiny hand-made wheel with the real layout) and MAIRA-2-style token filtering."""

import json
import zipfile

import numpy as np

from saeflow.studies.maira2.data import filter_spans, kept_positions, read_radlabels

REPORT = (
    "FINAL REPORT\nINDICATION: ___ year old with cough.\n\nIMPRESSION:\n1. Small left pleural effusion.\n"
)


def _wheel(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("radlabels/samples/synthetic_reports/synth_0002.txt", "FINDINGS: Heart is enlarged.")
        zf.writestr("radlabels/samples/synthetic_reports/synth_0001.txt", REPORT)
        zf.writestr(
            "radlabels/samples/synthetic_labels.json",
            json.dumps(
                {
                    "synth_0001": {"pleural_effusion": "definitely present"},
                    "synth_0002": {
                        "cardiomegaly": "definitely present",
                        "pleural_effusion": "definitely absent",
                    },
                }
            ),
        )
        zf.writestr(
            "radlabels/aliases.py",
            'ALIASES: dict = {"cardiomegaly": {"aliases": ["enlarged heart"], '
            '"exclude": []}, "pleural_effusion": {"aliases": ["effusion"]}}\nLABEL_NAMES = sorted(ALIASES)\n'
            'PARENT_MAP: dict = {"cardiomegaly": "cardio"}\n',
        )
    return path


def test_read_radlabels(tmp_path):
    data = read_radlabels(_wheel(tmp_path / "radlabels-0.2.0-py3-none-any.whl"))
    assert [r.id for r in data.reports] == ["synth_0001", "synth_0002"]
    assert data.findings == ("cardiomegaly", "pleural_effusion")
    assert data.label_matrix().tolist() == [[False, True], [True, False]]
    assert data.aliases["pleural_effusion"] == ["effusion"] and data.parents == {"cardiomegaly": "cardio"}
    assert data.documents()[0] == {"id": "synth_0001", "text": REPORT}


def test_filtering_headers_boilerplate():
    kinds = {(REPORT[a:b], k) for a, b, k in filter_spans(REPORT)}
    assert {
        ("FINAL REPORT", "title"),
        ("INDICATION:", "header"),
        ("IMPRESSION:", "header"),
        ("___", "deid"),
        ("1.", "numbering"),
    } <= kinds
    # word-level offsets: BOS (0, 0), then each whitespace-separated word
    words = [(m.start(), m.end()) for m in __import__("re").finditer(r"\S+", REPORT)]
    keep, why = kept_positions(REPORT, [(0, 0)] + words)
    kept = [REPORT[s:e] for (s, e), k in zip(words, keep[1:], strict=True) if k]
    assert kept == ["year", "old", "with", "cough.", "Small", "left", "pleural", "effusion."]
    assert why[0] == "special" and not keep[0] and np.sum(keep) == 8


def test_kept_rows_are_a_set_of_the_masked_rows_with_their_documents_and_positions(tmp_path):
    import torch
    from store_helpers import write_store

    from saeflow.activations import ActivationStore
    from saeflow.studies.maira2.data import row_mask, write_kept_rows

    acts = torch.arange(10 * 4, dtype=torch.float32).reshape(10, 4)
    doc_index = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    positions = torch.tensor([1, 2, 3, 4, 1, 2, 3, 1, 2, 3])
    store = ActivationStore(
        write_store(tmp_path / "acts", acts, doc_index=doc_index, position=positions, shard_rows=4)
    )
    docs = store.manifest.docs
    # document 0 keeps positions 2 and 4, document 1 nothing, document 2 (no mask) everything
    masks = {docs[0]: np.array([0, 0, 1, 0, 1], bool), docs[1]: np.zeros(4, bool)}
    mask = row_mask(store, masks)
    assert mask.tolist() == [False, True, False, True, False, False, False, True, True, True]
    write_kept_rows(store, mask, tmp_path / "kept")
    kept = ActivationStore(tmp_path / "kept" / "manifest.json")
    rows = list(kept.iter_rows())
    got = torch.cat([r.acts for r in rows])
    assert torch.equal(got, acts[mask])
    assert torch.cat([r.position for r in rows]).tolist() == [2, 4, 1, 2, 3]
    assert [kept.manifest.docs[i] for i in torch.cat([r.doc_index for r in rows]).tolist()] == [
        docs[0],
        docs[0],
        docs[2],
        docs[2],
        docs[2],
    ]
    assert kept.manifest.extra["kept"] == 5 and kept.manifest.extra["of"] == 10
