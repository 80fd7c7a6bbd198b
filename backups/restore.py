"""`kaizenity restore`: put a backup back, checked before and after.

Order matters, so that a refused or failed precondition changes nothing:
1. verify every file against the manifest's checksums;
2. refuse when the environment runs n8n with another encryption key (the credentials would not decrypt);
3. refuse, without `--force`, when either database already holds data;
4. stop n8n, recreate both databases empty, restore them (each in one transaction), start n8n again;
5. compare every table's row count and content digest with the manifest.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backups import catalog
from backups.backup import DUMP_FILES, KEY_FILE
from backups.container_db import ContainerDatabase
from backups.manifest import Manifest, verify_files
from backups.target import DataTarget

Progress = Callable[[str], None]


class RestoreRefused(RuntimeError):
    """A precondition of the restore does not hold; nothing was changed."""


class RestoreMismatch(RuntimeError):
    """The restored tables differ from what the backup recorded."""


@dataclass(frozen=True)
class RestoreReport:
    tables: int
    rows: int


def restore_backup(
    client: Any,
    target: DataTarget,
    directory: Path,
    *,
    force: bool = False,
    progress: Progress = lambda _m: None,
) -> RestoreReport:
    """Restore the backup in `directory` into `target`; raise before changing anything if it cannot be done."""
    manifest = Manifest.read(directory)
    verify_files(directory, manifest)
    progress(f"checksums of {len(manifest.files)} files verified")
    _check_key(directory, target)
    db = ContainerDatabase(client, target.postgres_container, target.superuser)
    names = {"app": target.app_database, "n8n": target.n8n_database}
    _check_empty(db, names, force)
    stopped = _stop_running(client, target.n8n_containers, progress)
    try:
        _create_missing_roles(db, manifest, progress)
        for role, database in names.items():
            progress(f"restoring {database}")
            _recreate(db, database, manifest.owners.get(role, target.superuser))
            db.restore(database, directory / DUMP_FILES[role])
    finally:
        for container in stopped:
            container.start()
        if stopped:
            progress(f"started {', '.join(c.name for c in stopped)} again")
    return _verify_tables(db, names, manifest, progress)


def _check_key(directory: Path, target: DataTarget) -> None:
    key = (directory / KEY_FILE).read_text(encoding="utf-8")
    if not hmac.compare_digest(key.encode(), target.encryption_key.encode()):
        raise RestoreRefused(
            f"environment '{target.prefix}' runs n8n with a different encryption key than the backup's: the "
            "restored credentials would not decrypt. Nothing was changed. Fix: redeploy with the backup's key "
            f"(`pulumi config set --secret kaizenity:n8nEncryptionKey < {directory / KEY_FILE}`, or "
            f"`kaizenity up --local --n8n-encryption-key-file {directory / KEY_FILE}`), then restore again."
        )


def _check_empty(db: ContainerDatabase, names: dict[str, str], force: bool) -> None:
    occupied = [
        database
        for role, database in names.items()
        if catalog.database_exists(db, database) and catalog.holds_data(db, database, role)
    ]
    if occupied and not force:
        raise RestoreRefused(
            f"database(s) {', '.join(occupied)} already hold data; restore would replace it. Nothing was changed. "
            "Fix: back them up first (`kaizenity backup`), then re-run restore with --force."
        )


def _stop_running(client: Any, names: tuple[str, ...], progress: Progress) -> list[Any]:
    stopped = []
    for name in names:
        container = client.containers.get(name)
        if container.status in {"running", "paused"}:
            if container.status == "paused":
                container.unpause()
            container.stop(timeout=30)
            stopped.append(container)
    if stopped:
        progress(f"stopped {', '.join(c.name for c in stopped)} while its databases are replaced")
    return stopped


def _create_missing_roles(db: ContainerDatabase, manifest: Manifest, progress: Progress) -> None:
    """Roles the dump names but the target lacks; created NOLOGIN (a login needs a password set by its owner)."""
    present = {role.name for role in catalog.roles(db)}
    for name in sorted(set(manifest.roles) - present):
        db.execute("postgres", f'CREATE ROLE "{name.replace(chr(34), chr(34) * 2)}" NOLOGIN')
        if manifest.roles[name]:
            progress(f"role {name} did not exist: created without login; set its password to let it log in")


def _recreate(db: ContainerDatabase, database: str, owner: str) -> None:
    quoted = '"' + database.replace('"', '""') + '"'
    owner_q = '"' + owner.replace('"', '""') + '"'
    db.execute("postgres", f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    db.execute("postgres", f"CREATE DATABASE {quoted} OWNER {owner_q}")


def _verify_tables(
    db: ContainerDatabase, names: dict[str, str], manifest: Manifest, progress: Progress
) -> RestoreReport:
    problems: list[str] = []
    tables = rows = 0
    for role, database in names.items():
        actual = catalog.table_stats(db, database)
        for table, expected in manifest.tables.get(role, {}).items():
            got = actual.get(table)
            if got != expected:
                problems.append(
                    f"{database}.{table}: expected {expected.rows} rows, found {got.rows if got else 'no table'}"
                    + ("" if got is None or got.rows != expected.rows else " (contents differ)")
                )
            tables += 1
            rows += expected.rows
    if problems:
        raise RestoreMismatch(
            "restore finished but does not match the backup: "
            + "; ".join(problems[:20])
            + ". Fix: restore again; if it repeats, the backup was taken while something else wrote to the database."
        )
    progress(f"verified {tables} tables, {rows} rows: equal to the backup")
    return RestoreReport(tables=tables, rows=rows)
