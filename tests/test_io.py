"""saeflow.io: atomic outputs (nothing half-written looks complete) with ordinary file modes."""

from __future__ import annotations

import os
import stat

import pytest

from saeflow.io import atomic_path


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
