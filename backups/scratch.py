"""A scratch PostgreSQL: a base backup plus WAL replay, in its own volume and container, with no network.

The restore is rehearsed here first: recovery to the target time, then counts, digests and n8n credential
decryption are checked in this throw-away server, so a bad archive or a wrong target time costs nothing in the
environment being restored. Only a scratch server that passed is copied into the target.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from backups.archive import Archive, BaseBackup
from backups.container_db import ContainerDatabase, DatabaseToolError
from infra.services.backup import ARCHIVE_DIR
from infra.services.common import LABEL_PREFIX, LABEL_SERVICE

PGDATA = "/var/lib/postgresql/data"
RESTORE_MARKER = "# kaizenity-restore: recovery settings (removed when copied into the target)"
Progress = Callable[[str], None]


class RecoveryFailed(RuntimeError):
    """The scratch server did not reach the recovery target (or did not start)."""


def recovery_settings(to_time: datetime | None) -> str:
    """postgresql.auto.conf lines for archive recovery from the streamed WAL.

    The newest segment is still `*.partial` in pg_receivewal's directory: restore_command falls back to it, so
    `--latest` replays up to the last streamed record (PostgreSQL docs, "pg_receivewal": the partial file can be
    used for recovery once renamed)."""
    lines = [
        RESTORE_MARKER,
        f"restore_command = 'cp {ARCHIVE_DIR}/wal/%f %p 2>/dev/null || cp {ARCHIVE_DIR}/wal/%f.partial %p'",
        "recovery_target_action = 'promote'",
    ]
    if to_time is not None:
        lines += [f"recovery_target_time = '{to_time.isoformat()}'", "recovery_target_inclusive = off"]
    return "\n".join(lines) + "\n"


class ScratchServer:
    """One scratch volume + container; `remove()` deletes both."""

    def __init__(self, client: Any, archive: Archive, base: BaseBackup, prefix: str, memory_mb: int = 1024) -> None:
        self.client, self.archive, self.base = client, archive, base
        suffix = secrets.token_hex(3)
        self.name = f"{prefix}-restore-scratch-{suffix}"
        self.labels = {LABEL_PREFIX: prefix, LABEL_SERVICE: "restore-scratch"}
        self.memory_mb = memory_mb
        self.container: Any = None
        self.volume: Any = None

    def start(self, to_time: datetime | None, progress: Progress) -> None:
        self.volume = self.client.volumes.create(name=self.name, labels=self.labels)
        conf = recovery_settings(to_time)
        script = f"""set -e
cp -a {ARCHIVE_DIR}/base/{self.base.stamp}/. {PGDATA}/
rm -f {PGDATA}/backup_manifest {PGDATA}/kaizenity-backup.env {PGDATA}/kaizenity-backup.recorded
printf '%s' {shlex.quote(conf)} >>{PGDATA}/postgresql.auto.conf
touch {PGDATA}/recovery.signal
chown -R postgres:postgres {PGDATA}
chmod 700 {PGDATA}
exec gosu postgres postgres -c listen_addresses='' -c hot_standby=off -c archive_mode=off
"""
        progress(f"scratch server {self.name}: base backup {self.base.stamp} + WAL replay")
        self.container = self.client.containers.run(
            self.archive.image,
            name=self.name,
            entrypoint=["bash", "-c", script],
            volumes={
                self.volume.name: {"bind": PGDATA, "mode": "rw"},
                self.archive.volume: {"bind": ARCHIVE_DIR, "mode": "ro"},
            },
            network_mode="none",
            labels=self.labels,
            mem_limit=f"{self.memory_mb}m",
            detach=True,
            stop_signal="SIGINT",
        )

    def wait_promoted(self, superuser: str, timeout_s: float = 1800) -> ContainerDatabase:
        """Block until recovery ended and the server accepts writes; raise with its log if it died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status in {"exited", "dead"}:
                raise RecoveryFailed(self._failure("stopped during recovery"))
            try:
                db = ContainerDatabase(self.client, self.name, superuser)
                if db.query("postgres", "SELECT pg_is_in_recovery()")[0][0] == "f":
                    return db
            except DatabaseToolError:
                pass
            time.sleep(1)
        raise RecoveryFailed(self._failure(f"still recovering after {timeout_s:.0f} s"))

    def stop(self) -> None:
        """Clean shutdown (SIGINT: fast shutdown with a checkpoint), so the data directory can be copied."""
        self.container.stop(timeout=120)

    def remove(self) -> None:
        import docker.errors

        for thing in (self.container, self.volume):
            if thing is None:
                continue
            with contextlib.suppress(docker.errors.NotFound):
                thing.remove(force=True)

    def _failure(self, what: str) -> str:
        log = self.container.logs(tail=15).decode(errors="replace").strip()
        return (
            f"scratch server {what} (base backup {self.base.stamp}). Its log:\n{log}\n"
            "Fix: a target time after the newest WAL cannot be reached (see `kaizenity backup status`); pick an "
            "earlier --to-time or use --latest. Nothing in the target environment was touched."
        )
