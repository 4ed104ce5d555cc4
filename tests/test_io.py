"""saeflow.io: atomic outputs (nothing half-written looks complete) with ordinary file modes."""

from __future__ import annotations

import os
import stat

import pytest

from saeflow.errors import DataError, SaeflowError
from saeflow.io import atomic_path, read_jsonl


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_file_appears_only_on_success_with_umask_mode(tmp_path, umask_022):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and _mode(target) == 0o644


def test_directory_contents_get_umask_modes_even_if_written_private(tmp_path, umask_022):
    target = tmp_path / "model"
    with atomic_path(target, is_dir=True) as tmp:
        private = tmp / "sub" / "weights.bin"
        private.parent.mkdir()
        private.write_bytes(b"w")
        private.chmod(0o600)  # what a library's own temp-file-then-rename leaves behind
    assert _mode(target) == 0o755 and _mode(target / "sub") == 0o755
    assert _mode(target / "sub" / "weights.bin") == 0o644


def test_directory_replaces_an_old_one_whole(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "stale").write_text("x")
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "fresh").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["fresh"]


def test_a_library_that_replaces_the_file_still_gets_the_umask_mode(tmp_path, umask_022):
    import torch
    from safetensors.torch import load_file, save_file

    target = tmp_path / "w.safetensors"
    with atomic_path(target) as tmp:
        save_file({"w": torch.ones(2)}, str(tmp))  # writes a fresh file, mode 0600 on some versions
        tmp.chmod(0o600)  # and make sure of it
    assert _mode(target) == 0o644 and torch.equal(load_file(str(target))["w"], torch.ones(2))


def test_sae_weights_are_group_readable(tmp_path, umask_022):
    from saeflow.sae import SAEConfig, make_sae

    make_sae(SAEConfig(architecture="topk", d_in=4, d_sae=8, k=2), seed=0).save(tmp_path / "sae")
    assert _mode(tmp_path / "sae" / "sae_weights.safetensors") == 0o644
    assert _mode(tmp_path / "sae" / "cfg.json") == 0o644


def test_read_jsonl_names_the_file_and_line_of_a_bad_line(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2}\n{"id": 3, "te')  # killed mid-write
    rows = read_jsonl(path)
    assert next(rows) == {"id": 1} and next(rows) == {"id": 2}
    with pytest.raises(DataError) as err:
        next(rows)
    msg = str(err.value)
    assert str(path) in msg and "line 4" in msg and "truncated" in msg and "\n" not in msg
    path.write_text('{"id": 1}\nnot json\n')
    with pytest.raises(DataError, match=r"texts\.jsonl: line 2 is not valid JSON"):
        list(read_jsonl(path))
    path.write_bytes(b'{"id": 1}\n{"t": "\xff"}\n')
    with pytest.raises(DataError, match=r"line 2 is not valid UTF-8"):
        list(read_jsonl(path))


def test_a_corrupt_sae_weights_file_is_one_line_naming_it(tmp_path):
    from saeflow.sae import SAEConfig, load_sae, make_sae

    out = tmp_path / "sae"
    make_sae(SAEConfig(architecture="topk", d_in=4, d_sae=8, k=2), seed=0).save(out)
    weights = out / "sae_weights.safetensors"
    good = weights.read_bytes()
    for damaged in (good[: len(good) // 2], b"", b"\x00" * 16):
        weights.write_bytes(damaged)
        with pytest.raises(SaeflowError) as err:
            load_sae(out)
        assert str(weights) in str(err.value) and "\n" not in str(err.value)
    import torch
    from safetensors.torch import save_file

    save_file(
        {
            "W_enc": torch.zeros(4, 9),
            "b_enc": torch.zeros(8),
            "W_dec": torch.zeros(8, 4),
            "b_dec": torch.zeros(4),
        },
        str(weights),
    )
    with pytest.raises(DataError, match=r"'W_enc' has shape \[4, 9\].*implies \[4, 8\]"):
        load_sae(out)
    save_file({"W_enc": torch.zeros(4, 8)}, str(weights))
    with pytest.raises(DataError, match="'b_enc' is missing"):
        load_sae(out)
