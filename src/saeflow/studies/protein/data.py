"""Protein data readers: gor4's PDB chains with H/E/C labels, FASTA, UniProt TSV features; a seeded chain
split.

Every reader takes a path and raises a one-line DataError naming the file on malformed input.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from saeflow.errors import DataError

GOR4_SEQ, GOR4_OBS = "new-gor4.seq", "new-gor4.obs"
SS_LETTERS = "HEC"
_AA_RE = re.compile(r"^[A-Za-z]+$")


@dataclass(frozen=True)
class ProteinRecord:
    """One chain: id, residues and an optional per-residue label track (H/E/C for gor4)."""

    id: str
    sequence: str
    labels: str | None = None
    """One letter per residue (same length as `sequence`), or None."""


@dataclass(frozen=True)
class Feature:
    """A UniProt feature on residues `start`..`end` (1-based, inclusive, as UniProt writes them)."""

    type: str
    """Column / feature name, e.g. ``Zinc finger``, ``Transmembrane``, ``Helix``."""
    start: int
    end: int
    note: str = ""


@dataclass(frozen=True)
class UniProtEntry:
    id: str
    sequence: str
    features: tuple[Feature, ...]


def _gor4_blocks(path: Path) -> list[tuple[str, str]]:
    """(id, body) blocks of a GOR4 database file: '!ID ... LENGTH' header, 50-letter lines, '@' at the end."""
    if not path.is_file():
        raise DataError(f"gor4 file {path} does not exist")
    blocks, header, body = [], None, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("!"):
            if header is not None:
                raise DataError(f"{path}:{n}: new record before the '@' that ends {header[0]!r}")
            parts = line[1:].split()
            if not parts or not parts[-1].isdigit():
                raise DataError(f"{path}:{n}: header must be '!ID ... LENGTH'; got {line[:60]!r}")
            header, body = (parts[0], int(parts[-1])), []
        else:
            if header is None:
                raise DataError(f"{path}:{n}: residues outside a record (no '!' header before them)")
            done = line.endswith("@")
            body.append(line.rstrip("@"))
            if done:
                text = "".join(body)
                if len(text) != header[1]:
                    raise DataError(
                        f"{path}: record {header[0]!r} has {len(text)} letters; header says {header[1]}"
                    )
                blocks.append((header[0], text))
                header = None
    if header is not None:
        raise DataError(f"{path}: record {header[0]!r} is not terminated by '@'")
    return blocks


def read_gor4(
    data_dir: str | Path, *, limit: int | None = None, seq_file: str = GOR4_SEQ, obs_file: str = GOR4_OBS
) -> list[ProteinRecord]:
    """Chains of the gor4 package's database (`gor4-1.0.1/gor4/data/`): sequences with H/E/C per residue.

    new-gor4 holds 13,244 chains (3,538,510 residues) under 13,224 distinct ids; ids are made unique
    (ID#2)."""
    data_dir = Path(data_dir)
    seqs, obs = _gor4_blocks(data_dir / seq_file), _gor4_blocks(data_dir / obs_file)
    if len(seqs) != len(obs):
        raise DataError(f"{data_dir / obs_file}: {len(obs)} records; {seq_file} has {len(seqs)}")
    records, seen = [], Counter()
    for (sid, seq), (oid, lab) in zip(seqs, obs, strict=True):
        if sid != oid or len(seq) != len(lab):
            raise DataError(f"{data_dir / obs_file}: record {oid!r} does not match {sid!r} of {seq_file}")
        if set(lab) - set(SS_LETTERS) or not _AA_RE.match(seq):
            raise DataError(f"{data_dir}: record {sid!r} has letters outside amino acids / {SS_LETTERS}")
        seen[sid] += 1  # new-gor4 repeats 20 ids (3J7Y chains) with other sequences: the repeat becomes ID#2
        records.append(ProteinRecord(sid if seen[sid] == 1 else f"{sid}#{seen[sid]}", seq.upper(), lab))
        if limit is not None and len(records) >= limit:
            break
    return records


def read_fasta(path: str | Path, *, labels: bool = False) -> list[ProteinRecord]:
    """Records of a FASTA file (id = first word of the header). With `labels`, each record is a header, a
    sequence line and a label line of the same length (the TMbed layout)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"FASTA file {path} does not exist")
    records: list[ProteinRecord] = []
    rid, lines = None, []

    def close(n: int) -> None:
        if rid is None:
            return
        if not lines:
            raise DataError(f"{path}:{n}: record {rid!r} has no sequence")
        seq, lab = (lines[0], lines[1] if len(lines) > 1 else None) if labels else ("".join(lines), None)
        if not _AA_RE.match(seq):
            raise DataError(f"{path}: record {rid!r} holds non-letter characters in its sequence")
        if labels and (lab is None or len(lab) != len(seq) or len(lines) > 2):
            raise DataError(
                f"{path}: record {rid!r} needs one sequence line and one label line of equal length"
            )
        records.append(ProteinRecord(rid, seq.upper(), lab))

    n = 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            close(n)
            rid, lines = (line[1:].split() or [""])[0], []
            if not rid:
                raise DataError(f"{path}:{n}: empty FASTA header")
        elif rid is None:
            raise DataError(f"{path}:{n}: sequence before the first '>' header")
        else:
            lines.append(line.rstrip("*"))
    close(n)
    if not records:
        raise DataError(f"FASTA file {path} holds no records")
    return records


_RANGE_RE = re.compile(r"\b([A-Z][A-Z_]+)\s+[<?]?(\d+)(?:\.\.[>?]?(\d+))?")
_NOTE_RE = re.compile(r'/note="([^"]*)"')
_NON_FEATURE = {
    "Entry",
    "Entry Name",
    "Sequence",
    "Length",
    "Organism",
    "Protein names",
    "Gene Names",
    "Reviewed",
}


def read_uniprot_tsv(path: str | Path) -> list[UniProtEntry]:
    """Entries of a UniProt TSV download (columns `Entry`, `Sequence` and feature columns such as `Zinc
    finger`, `Transmembrane`, `Helix`, whose cells read `ZN_FING 120..142; /note="C2H2-type 1"; ZN_FING
    ...`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"UniProt TSV {path} does not exist")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        cols = reader.fieldnames or []
        if "Entry" not in cols or "Sequence" not in cols:
            raise DataError(
                f"UniProt TSV {path} needs columns 'Entry' and 'Sequence'; has {', '.join(cols)[:200]}"
            )
        entries = []
        for n, row in enumerate(reader, 2):
            seq = (row["Sequence"] or "").strip()
            if not _AA_RE.match(seq):
                raise DataError(f"{path}:{n}: entry {row['Entry']!r} has an empty or non-letter Sequence")
            feats = []
            for col in cols:
                if col in _NON_FEATURE or not row.get(col):
                    continue
                for item in _split_features(row[col]):
                    m = _RANGE_RE.match(item)
                    if m is None:
                        continue
                    start, end = int(m.group(2)), int(m.group(3) or m.group(2))
                    if not 1 <= start <= end <= len(seq):
                        raise DataError(
                            f"{path}:{n}: {col} range {start}..{end} outside the {len(seq)} residues "
                            f"of {row['Entry']!r}"
                        )
                    note = _NOTE_RE.search(item)
                    feats.append(Feature(col, start, end, note.group(1) if note else ""))
            entries.append(UniProtEntry(row["Entry"].strip(), seq.upper(), tuple(feats)))
    return entries


def _split_features(cell: str) -> list[str]:
    """One string per feature: a cell lists `KEY range; /qualifier=...; KEY range; ...`."""
    items: list[str] = []
    for part in cell.split(";"):
        part = part.strip()
        if _RANGE_RE.match(part):
            items.append(part)
        elif items and part:
            items[-1] += "; " + part
    return items


# --------------------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------------------


class Splits(NamedTuple):
    train: list[ProteinRecord]
    val: list[ProteinRecord]
    test: list[ProteinRecord]


def split_of(record_id: str, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """'train', 'val' or 'test' from a seeded sha256 of the id: stable across runs, machines and file
    orders."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(
            f"split fractions must be three non-negative numbers summing to 1; got {list(fractions)}"
        )
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test"


def split_records(
    records: Iterable[ProteinRecord], seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> Splits:
    out: dict[str, list[ProteinRecord]] = {"train": [], "val": [], "test": []}
    for rec in records:
        out[split_of(rec.id, seed, fractions)].append(rec)
    return Splits(out["train"], out["val"], out["test"])


def entry_labels(entry: UniProtEntry, feature_type: str) -> list[bool]:
    """Per-residue membership of `entry`'s features of one type."""
    marks = [False] * len(entry.sequence)
    for f in entry.features:
        if f.type == feature_type:
            for i in range(f.start - 1, f.end):
                marks[i] = True
    return marks
