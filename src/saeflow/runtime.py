"""What every script entry point shares: logging to the rule's log, one-line user errors, seeding,
provenance."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import random
import re
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from saeflow import __version__
from saeflow.errors import ConfigError, SaeflowError

log = logging.getLogger("saeflow")

_TRACKED_PACKAGES = ("torch", "transformers", "safetensors", "numpy", "sentence-transformers", "faiss-cpu")


def redirect_to(log_path: str | Path | None, level: int = logging.INFO) -> None:
    """Send logging (and warnings) to the rule's log file as well as stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)


def run_main(main: Callable[[], Any]) -> None:
    """Run a script body; user mistakes (SaeflowError) become one line on stderr and exit code 1."""
    try:
        main()
    except SaeflowError as err:
        log.error("%s: %s", type(err).__name__, err)
        print(f"saeflow error: {err}", file=sys.stderr)
        sys.exit(1)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


_DEVICE = re.compile(r"^(cpu|cuda|mps|xpu)(:(\d+))?$")


def torch_version() -> str | None:
    """The installed torch's version string (e.g. ``2.13.0+cpu``) without importing torch; None if absent."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def check_device(device: str, *, key: str = "device", visible: bool = False) -> str:
    """Check a torch device string against the installed torch; return it.

    Always (cheap, config time): the syntax, and that a CUDA / MPS device has a torch built for it (a ``+cpu``
    build is refused without importing torch). With `visible` (inside a job, about to use it): that the
    device is actually there. Each failure is one ConfigError naming `key` and the installed torch.
    """
    device = str(device).strip()
    m = _DEVICE.match(device)
    if not m:
        raise ConfigError(f"config key '{key}': unknown device {device!r}; use cpu, cuda, cuda:N or mps")
    kind, index = m.group(1), int(m.group(3) or 0)
    if kind == "cpu":
        return device
    version = torch_version()
    if version is None:  # the jobs may run in their own (conda) environment: nothing to check here
        return device
    fix = f"set {key}: cpu, or install a torch build with {kind.upper()} support"
    if kind == "cuda" and "+cpu" in version:
        raise ConfigError(
            f"config key '{key}' is {device!r}, but the installed torch {version} is a CPU-only build; {fix}"
        )
    import torch

    if kind == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise ConfigError(
                f"config key '{key}' is {device!r}, but the installed torch {version} was built "
                f"without CUDA; {fix}"
            )
        if visible:
            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if index >= n:
                seen = os.environ.get("CUDA_VISIBLE_DEVICES")
                raise ConfigError(
                    f"config key '{key}' is {device!r}, but torch {version} sees {n} CUDA device(s) "
                    f"here (CUDA_VISIBLE_DEVICES={seen if seen is not None else 'unset'}); ask the "
                    f"scheduler for a GPU (config gpu: 1) or {fix.split(', or')[0]}"
                )
    elif kind == "mps":
        if not torch.backends.mps.is_built():
            raise ConfigError(
                f"config key '{key}' is {device!r}, but the installed torch {version} was built "
                f"without MPS; {fix}"
            )
        if visible and not torch.backends.mps.is_available():
            raise ConfigError(
                f"config key '{key}' is {device!r}, but MPS is not available on this machine "
                f"(torch {version}); set {key}: cpu"
            )
    elif kind == "xpu" and (not hasattr(torch, "xpu") or (visible and not torch.xpu.is_available())):
        raise ConfigError(
            f"config key '{key}' is {device!r}, but torch {version} has no usable XPU here; {fix}"
        )
    return device


def set_threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(max(1, int(n)))


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions(names: Iterable[str] = _TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"saeflow": __version__, "python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def provenance(config: Any, *, seed: int | None = None, inputs: Iterable[str | Path] = ()) -> dict:
    """Sidecar record: resolved config, seed, package versions and checksums of small input files."""
    checksums = {}
    for p in inputs:
        p = Path(p)
        if p.is_file() and p.stat().st_size < 64 << 20:
            checksums[str(p)] = file_sha256(p)
    return {"config": config, "seed": seed, "versions": package_versions(), "inputs": checksums}
