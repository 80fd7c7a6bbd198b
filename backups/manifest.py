"""The backup manifest: what a backup holds, with a checksum per file and row counts per table.

Checksums are verified before a restore touches anything, so a corrupted or truncated file is found while the
target database is still intact. Row counts (and a content digest) per table are what the restore is checked
against afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TableStats:
    """Rows in one table and a digest of its contents (md5 over the rows' text, in a fixed order)."""

    rows: int
    digest: str


@dataclass
class Manifest:
    """Everything needed to check a backup and what it restores to."""

    prefix: str
    created_at: str
    databases: dict[str, str]  # role ("app" | "n8n") -> database name at backup time
    owners: dict[str, str] = field(default_factory=dict)  # role -> owning PostgreSQL role of that database
    roles: dict[str, bool] = field(default_factory=dict)  # PostgreSQL role -> can log in
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    tables: dict[str, dict[str, TableStats]] = field(default_factory=dict)  # role -> "schema.table" -> stats
    postgres_version: str = ""
    format_version: int = FORMAT_VERSION

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        text = json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private like the dumps it describes
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise BackupCorrupted(f"{directory}: no {MANIFEST}. Fix: point at a directory `kaizenity backup` made.")
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            tables = {
                role: {name: TableStats(**stats) for name, stats in per_db.items()}
                for role, per_db in raw.pop("tables").items()
            }
            return cls(tables=tables, **raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupCorrupted(f"{path}: unreadable manifest ({exc}). Fix: use another backup.") from exc


class BackupCorrupted(RuntimeError):
    """A backup file is missing or does not match its recorded checksum."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Every file the manifest lists exists and matches its checksum; raise naming each that does not."""
    problems = []
    for name, expected in sorted(manifest.files.items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_of(path) != expected:
            problems.append(f"{name}: checksum mismatch (the file changed or is corrupted)")
    if problems:
        raise BackupCorrupted(
            f"backup {directory} failed verification, nothing was restored: {'; '.join(problems)}. "
            "Fix: restore from another backup (`ls` the backup root); never edit backup files."
        )
