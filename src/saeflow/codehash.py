"""A rule's code version: the hash of the saeflow modules its script imports, directly or transitively.

Rules take ``code=code_version("scripts/x.py")`` as a param, so editing a module reruns exactly the jobs whose
script reaches it, and nothing else (a changed docstring counts: the hash is of the source text). Imports are
read from the source (ast), not executed, so this is cheap at DAG-build time.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "saeflow"
_SRC = Path(__file__).resolve().parent.parent


def _module_file(module: str) -> Path | None:
    base = _SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """saeflow modules named by `path`'s import statements (``from saeflow.x import y`` also tries
    saeflow.x.y)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == PACKAGE
        ):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


@cache
def module_closure(path: str) -> tuple[str, ...]:
    """Source files of every saeflow module `path` reaches through imports, plus their parent packages'
    ``__init__.py``. A parent's own imports are not followed: ``saeflow.studies`` imports every study to list
    them, and following that would make each study's jobs rerun whenever any other study changes."""
    seen: dict[str, Path] = {}
    followed: set[str] = set()
    stack = sorted(_imports(Path(path)))
    while stack:
        module = stack.pop()
        if module in followed:
            continue
        file = _module_file(module)
        if file is None:
            continue
        followed.add(module)
        seen[module] = file
        stack.extend(sorted(_imports(file)))
        parts = module.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            parent_file = _module_file(parent)
            if parent_file is not None:
                seen.setdefault(parent, parent_file)
    return tuple(str(seen[m]) for m in sorted(seen))


@cache
def code_version(script: str) -> str:
    """sha256 (12 hex digits) over the script and every saeflow module it reaches."""
    h = hashlib.sha256()
    h.update(Path(script).name.encode())
    h.update(Path(script).read_bytes())
    for file in module_closure(script):
        h.update(str(Path(file).relative_to(_SRC)).encode())
        h.update(Path(file).read_bytes())
    return h.hexdigest()[:12]
