"""Is the schema at the latest migration, and are the applied files unchanged?

The history comes from the migration runner (``bootstrap.runner.read_history``) and the files from its catalog
(``bootstrap.catalog.load_migrations``): one reader, one checksum, one rule for stray files (a `.sql` file that
is not a migration is an error, as it is for the runner, which would refuse to apply). The probe only compares;
it never migrates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.catalog import MIGRATIONS_DIR, load_migrations

DEFAULT_DIR = MIGRATIONS_DIR


@dataclass(frozen=True)
class MigrationFile:
    """One migration file as the runner identifies it: version, name and SHA-256 of its contents."""

    version: str
    name: str
    checksum: str


@dataclass(frozen=True)
class MigrationState:
    """Pending = files not applied; drifted = applied files changed since; ahead = applied, no file here."""

    pending: tuple[str, ...]
    drifted: tuple[str, ...]
    ahead: tuple[str, ...]
    latest: str | None


def read_files(directory: Path) -> list[MigrationFile]:
    """The migration files in version order, as the runner's catalog reads them (it raises
    ``MigrationFileError`` for a stray or duplicate file)."""
    return [
        MigrationFile(migration.label.partition("_")[0], migration.name, migration.checksum)
        for migration in load_migrations(directory)
    ]


def compare(files: Sequence[MigrationFile], applied: Iterable[tuple[str, str]]) -> MigrationState:
    """Pure comparison of files against history rows ``(version, checksum)``: unit-testable without a DB."""
    history = {_key(version): checksum for version, checksum in applied}
    by_version = {_key(item.version): item for item in files}
    pending = tuple(f"{f.version}_{f.name}" for f in files if _key(f.version) not in history)
    drifted = tuple(
        f"{f.version}_{f.name}" for f in files if _key(f.version) in history and history[_key(f.version)] != f.checksum
    )
    ahead = tuple(sorted(version for version in history if version not in by_version))
    applied_files = [f for f in files if _key(f.version) in history]
    latest = f"{applied_files[-1].version}_{applied_files[-1].name}" if applied_files else None
    return MigrationState(pending, drifted, ahead, latest)


def migration_state(conn: Any, directory: Path = DEFAULT_DIR) -> MigrationState:
    """Read the history table over an open psycopg connection and compare it with the files.

    A missing history table means nothing was ever migrated: every file is pending (CRITICAL), not an error.
    """
    from bootstrap.runner import read_history  # the runner owns the history table: read it its way

    files = read_files(directory)
    if not files:
        raise FileNotFoundError(f"no migration files (*.sql) in {directory}")
    return compare(files, [(str(row.version), row.checksum) for row in read_history(conn)])


def _key(version: str) -> str:
    """Versions compare as numbers when numeric ('0004' == '4'), so a text/integer column both work."""
    stripped = version.strip()
    return str(int(stripped)) if stripped.isdigit() else stripped
