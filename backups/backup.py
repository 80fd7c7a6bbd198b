"""`kaizenity backup`: both databases and n8n's encryption key, into one timestamped, checksummed directory.

Consistency: n8n (main and workers) is the only writer of both databases, so its containers are paused while
the tables are counted and dumped, and resumed afterwards whatever happens. A backup is written under a
`.partial-` name and renamed only when complete, so an interrupted run never looks like a backup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backups import catalog
from backups.container_db import ContainerDatabase
from backups.manifest import MANIFEST, Manifest, sha256_of
from backups.target import DataTarget

KEY_FILE = "n8n-encryption-key"
DUMP_FILES = {"app": "app.dump", "n8n": "n8n.dump"}
DEFAULT_RETENTION = 7

Progress = Callable[[str], None]


def create_backup(
    client: Any,
    target: DataTarget,
    root: Path,
    *,
    retention: int = DEFAULT_RETENTION,
    progress: Progress = lambda _m: None,
) -> Path:
    """Back up `target` into `root/<prefix>/<UTC timestamp>/`; prune to the newest `retention` backups."""
    if not target.encryption_key:
        raise RuntimeError(
            f"environment '{target.prefix}': n8n runs without N8N_ENCRYPTION_KEY in its environment, so the key "
            "cannot be backed up with the data. Fix: set the stack secret kaizenity:n8nEncryptionKey and redeploy."
        )
    now = datetime.now(UTC)
    stamp = f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z"  # sorts by time; ms: no clash in one second
    home = root / target.prefix
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)  # an existing directory keeps its mode under mkdir(exist_ok=True)
    partial = home / f".partial-{stamp}"
    partial.mkdir(mode=0o700)
    os.chmod(partial, 0o700)  # mkdir's mode is filtered by the umask
    try:
        manifest = _write_backup(client, target, partial, stamp, progress)
        final = home / stamp
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    progress(f"backup complete: {final} ({len(manifest.files)} files)")
    for old in prune(home, retention):
        progress(f"retention {retention}: removed {old.name}")
    return final


def _write_backup(client: Any, target: DataTarget, directory: Path, stamp: str, progress: Progress) -> Manifest:
    db = ContainerDatabase(client, target.postgres_container, target.superuser)
    databases = {"app": target.app_database, "n8n": target.n8n_database}
    manifest = Manifest(prefix=target.prefix, created_at=stamp, databases=databases)
    manifest.postgres_version = catalog.server_version(db)
    manifest.roles = {role.name: role.can_login for role in catalog.roles(db)}
    with paused(client, target.n8n_containers, progress):
        for role, database in databases.items():
            progress(f"counting rows of {database}")
            manifest.tables[role] = catalog.table_stats(db, database)
            manifest.owners[role] = catalog.database_owner(db, database)
            progress(f"pg_dump {database}")
            db.dump(database, directory / DUMP_FILES[role])
    key_path = directory / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_text(target.encryption_key, encoding="utf-8")
    os.chmod(key_path, 0o600)
    manifest.files = {name: sha256_of(directory / name) for name in [*DUMP_FILES.values(), KEY_FILE]}
    manifest.write(directory)
    return manifest


@contextlib.contextmanager
def paused(client: Any, names: tuple[str, ...], progress: Progress) -> Iterator[None]:
    """Pause the running containers among `names` for the duration; always resume them."""
    paused_now = []
    try:
        for name in names:
            container = client.containers.get(name)
            if container.status == "running":
                container.pause()
                paused_now.append(container)
        if paused_now:
            progress(f"paused {', '.join(c.name for c in paused_now)} (the writers) for a consistent backup")
        yield
    finally:
        for container in paused_now:
            container.unpause()


def backups_of(home: Path) -> list[Path]:
    """Complete backups in a prefix's directory, oldest first."""
    if not home.is_dir():
        return []
    return sorted(p for p in home.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists())


def prune(home: Path, retention: int) -> list[Path]:
    """Remove all but the newest `retention` backups; return what was removed."""
    existing = backups_of(home)
    doomed = existing[: max(0, len(existing) - max(retention, 1))]
    for path in doomed:
        shutil.rmtree(path)
    return doomed
