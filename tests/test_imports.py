"""No import cycles: every module of the package imports first in a fresh interpreter."""

import pkgutil
import subprocess
import sys

import pytest

import saeflow


def _modules():
    return sorted(
        m.name for m in pkgutil.walk_packages(saeflow.__path__, "saeflow.") if not m.name.endswith("__main__")
    )


@pytest.mark.parametrize("module", _modules())
def test_module_imports_on_its_own(module):
    out = subprocess.run(
        [sys.executable, "-c", f"import {module}"], check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_study_list_is_explicit_and_named_like_the_folders():
    from pathlib import Path

    from saeflow.studies import STUDIES

    folders = {p.parent.name for p in Path(saeflow.__file__).parent.glob("studies/*/__init__.py")}
    names = [s.name for s in STUDIES]
    assert len(set(names)) == len(names)
    assert set(names) <= folders
    for study in STUDIES:
        assert (Path(saeflow.__file__).parents[2] / study.rule_file).is_file(), study.rule_file
