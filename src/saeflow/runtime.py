"""What every script entry point shares: logging to the rule's log, one-line user errors, seeding, provenance."""

from __future__ import annotations

import hashlib
import logging
import platform
import random
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from saeflow import __version__
from saeflow.errors import SaeflowError

log = logging.getLogger("saeflow")

_TRACKED_PACKAGES = ("torch", "transformers", "safetensors", "numpy", "sentence-transformers", "faiss-cpu")


def redirect_to(log_path: str | Path | None, level: int = logging.INFO) -> None:
    """Send logging (and warnings) to the rule's log file as well as stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True)
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
