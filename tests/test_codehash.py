"""Rule code versions: a hash over a script and the saeflow modules it reaches (saeflow.codehash)."""

from pathlib import Path

from saeflow.codehash import code_version, module_closure

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_closure_follows_imports_transitively():
    files = {
        Path(f).relative_to(SCRIPTS.parent / "src").as_posix()
        for f in module_closure(str(SCRIPTS / "train_sae.py"))
    }
    assert "saeflow/train.py" in files and "saeflow/sae/base.py" in files  # direct, then through saeflow.sae
    assert "saeflow/activations.py" in files and "saeflow/outliers.py" in files
    assert not any(f.startswith("saeflow/studies/") for f in files)  # training does not reach any study


def test_version_changes_only_when_a_reached_module_changes(tmp_path):
    script = tmp_path / "x.py"
    script.write_text("from saeflow.outliers import inlier_mask\n")
    first = code_version(str(script))
    assert len(first) == 12
    other = tmp_path / "y.py"
    other.write_text("from saeflow.outliers import inlier_mask\n# a comment\n")
    assert code_version(str(other)) != first  # the script itself counts
    same = tmp_path / "z" / "x.py"
    same.parent.mkdir()
    same.write_text(script.read_text())
    assert code_version(str(same)) == first  # where the checkout lives does not count


def test_a_study_does_not_reach_the_others_through_the_study_list():
    src = SCRIPTS.parent / "src"
    files = {Path(f).relative_to(src).as_posix() for f in module_closure(str(SCRIPTS / "boosting_table.py"))}
    assert "saeflow/studies/__init__.py" in files  # the parent package's own text counts
    assert not any(f.startswith(("saeflow/studies/ssae/", "saeflow/studies/bias_in_bios/")) for f in files)
