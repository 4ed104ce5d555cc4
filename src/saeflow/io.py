"""Atomic file writing and small JSON/JSONL helpers: nothing half-written is left looking complete.

Outputs get the mode the umask gives ordinary files (0644 under umask 022), so a shared results directory
stays readable by the group, whatever the writer did to the temporary file (mkstemp creates 0600 files, and
libraries such as safetensors replace the file with a fresh private one).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from saeflow.errors import DataError


@contextmanager
def atomic_path(path: str | Path, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    # mkstemp/mkdtemp create private (0600/0700) entries; outputs should get the usual umask-based mode.
    umask = _current_umask()
    tmp.chmod((0o777 if is_dir else 0o666) & ~umask)
    try:
        yield tmp
        # Set the mode again after the block: writers may have replaced the file (safetensors' save_file
        # writes a new private file) or left private files inside the directory (transformers).
        if is_dir:
            for child in tmp.rglob("*"):
                if not child.is_symlink():
                    child.chmod((0o777 if child.is_dir() else 0o666) & ~umask)
            tmp.chmod(0o777 & ~umask)
            if path.exists():
                shutil.rmtree(path)
        elif tmp.exists():
            tmp.chmod(0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the JSON value of every non-blank line; a bad line is a DataError naming the file and line."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}: line {lineno} is not valid UTF-8 ({err.reason})") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                what = (
                    "not valid JSON"
                    if line.endswith("\n")
                    else "truncated (no newline at the end of the file)"
                )
                raise DataError(
                    f"{path}: line {lineno} is {what}: {err.msg} at column {err.colno}; "
                    "regenerate the file or remove the line"
                ) from None
            yield value
