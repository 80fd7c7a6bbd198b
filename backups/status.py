"""How well protected an environment is right now: last good base backup, WAL streaming and its lag, retention.

Shared by `kaizenity backup status` and the `backups` health probe. Lag is read from the server's side (the
replication slot's restart_lsn trails the receiver's flush position): it is what would be lost if the host died
now. A slot that is not active means nothing is streaming, whatever the archive holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backups.archive import Archive, BaseBackup
from backups.container_db import ContainerDatabase
from infra.services.backup import SLOT

SLOT_QUERY = f"""
SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
       coalesce(wal_status, ''), pg_current_wal_lsn()
FROM pg_replication_slots WHERE slot_name = '{SLOT}'
"""


@dataclass(frozen=True)
class BackupStatus:
    """A snapshot of an environment's protection."""

    base_backups: tuple[BaseBackup, ...]
    slot_exists: bool
    streaming: bool
    lag_bytes: int | None
    newest_wal: str | None
    newest_wal_age_s: float | None
    wal_bytes: int
    interval_s: int
    retention: int

    @property
    def last_base(self) -> BaseBackup | None:
        return self.base_backups[-1] if self.base_backups else None

    def last_base_age_s(self, now: datetime | None = None) -> float | None:
        base = self.last_base
        return None if base is None else ((now or datetime.now(UTC)) - base.finished).total_seconds()


def read_status(client: Any, archive: Archive, live: ContainerDatabase, sidecar_env: dict[str, str]) -> BackupStatus:
    rows = live.query("postgres", SLOT_QUERY)
    wal = [f for f in archive.wal_files() if f.name != "SHA256SUMS"]
    newest = max(wal, key=lambda f: f.name) if wal else None
    return BackupStatus(
        base_backups=tuple(archive.base_backups()),
        slot_exists=bool(rows),
        streaming=bool(rows) and rows[0][0] == "t",
        lag_bytes=int(rows[0][1]) if rows and rows[0][1] else None,
        newest_wal=newest.name if newest else None,
        newest_wal_age_s=time.time() - newest.mtime if newest else None,
        wal_bytes=sum(f.size for f in wal),
        interval_s=int(sidecar_env.get("BACKUP_INTERVAL_SECONDS", "86400")),
        retention=int(sidecar_env.get("BACKUP_RETENTION", "7")),
    )
