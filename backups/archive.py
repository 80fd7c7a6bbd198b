"""The backup archive of one environment: base backups and streamed WAL in a Docker volume.

Everything here reads the archive through containers of the PostgreSQL image (the sidecar when it runs, else a
throw-away reader with the volume mounted read-only), never through the host's file system: the archive may
be a volume on a remote Docker engine, and the image's own pg_verifybackup matches the server's major version.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backups.container_db import DatabaseToolError, run_in
from infra.services.backup import AGENT_PATH, ARCHIVE_DIR
from infra.services.common import LABEL_PREFIX, LABEL_SERVICE

SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$")
SEGMENTS_PER_XLOGID = 0x100000000 // (16 * 1024 * 1024)  # 16 MB segments (the default; initdb --wal-segsize)
KEY_FILE = "keys/n8n-encryption-key.enc"
VERIFY_IGNORE = "-i kaizenity-backup.env -i kaizenity-backup.recorded"  # the agent's own notes, not backed up
BUSY_EXIT = 75  # the agent's flock exit code: a base backup is already running
IMAGE_DATA_DIR = "/var/lib/postgresql/data"  # the postgres image declares it a VOLUME: helpers mount a tmpfs there


class ArchiveError(RuntimeError):
    """The archive cannot be read or written."""


class ArchiveCorrupted(RuntimeError):
    """A base backup or WAL segment failed verification; nothing was restored."""


@dataclass(frozen=True)
class BaseBackup:
    """One complete, pg_verifybackup-checked base backup (from its kaizenity-backup.env)."""

    stamp: str
    started: datetime
    finished: datetime
    start_lsn: str
    start_wal: str
    end_lsn: str = ""  # where the backup became consistent; its own pg_wal holds the WAL up to here

    @property
    def first_archived_wal(self) -> str:
        """The first segment recovery needs from the archive: the one holding the end of the backup (earlier
        segments are inside the base backup, streamed by pg_basebackup -X stream)."""
        if not self.end_lsn:
            return self.start_wal
        high, low = (int(part, 16) for part in self.end_lsn.split("/"))
        segment = (((high << 32) | low) - 1) // (16 * 1024 * 1024)  # the segment holding the last byte before it
        return f"{self.start_wal[:8]}{segment // SEGMENTS_PER_XLOGID:08X}{segment % SEGMENTS_PER_XLOGID:08X}"


@dataclass(frozen=True)
class WalFile:
    name: str
    size: int
    mtime: float


class Archive:
    """One archive volume, read through the sidecar or a throw-away reader container."""

    def __init__(self, client: Any, volume: str, image: str, sidecar: str | None = None) -> None:
        self.client, self.volume, self.image, self.sidecar = client, volume, image, sidecar

    @classmethod
    def of_environment(cls, client: Any, prefix: str, volume: str | None = None) -> Archive:
        """The archive of environment `prefix` (its sidecar's volume), or an explicit `volume` name."""
        containers = client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}={prefix}"})
        by_service = {c.labels.get(LABEL_SERVICE, ""): c for c in containers}
        sidecar, postgres = by_service.get("backup"), by_service.get("postgres")
        own = (
            next((m["Name"] for m in sidecar.attrs["Mounts"] if m.get("Destination") == ARCHIVE_DIR), None)
            if sidecar
            else None
        )
        if volume is None:
            if own is None:
                raise ArchiveError(
                    f"environment '{prefix}' has no backup sidecar. Fix: set `backups: {{enabled: true}}` in the "
                    "stack settings and redeploy, or name an archive volume with --archive."
                )
            volume = own
        if volume != own:
            sidecar = None  # another archive (imported, or of an environment that is gone): read-only access
        image_source = sidecar or postgres
        if image_source is None:
            raise ArchiveError(f"environment '{prefix}': no PostgreSQL container to take the image from.")
        image = image_source.attrs["Config"]["Image"]
        running = sidecar is not None and sidecar.status == "running"
        return cls(client, volume, image, sidecar.name if running and sidecar else None)

    # --- raw access -------------------------------------------------------------------------------------------

    def sh(self, script: str, *, what: str) -> str:
        """Run a bash script against the archive (mounted at /archive) as the postgres user; its stdout."""
        if self.sidecar:
            container = self.client.containers.get(self.sidecar)
            return run_in(self.client, container, ["bash", "-c", script], what=what).decode()
        return self._reader(script, what=what)

    def _reader(self, script: str, *, what: str) -> str:
        import docker.errors

        try:
            out = self.client.containers.run(
                self.image,
                entrypoint=["bash", "-c", script],
                user="postgres",
                volumes={self.volume: {"bind": ARCHIVE_DIR, "mode": "ro"}},
                network_mode="none",
                # The image declares VOLUME /var/lib/postgresql/data: without a mount there, every read would leave
                # an anonymous volume behind (`remove=True` removes the container, not its volumes).
                tmpfs={IMAGE_DATA_DIR: "size=1m"},
                remove=True,
                stdout=True,
                stderr=True,
                mem_limit="512m",
            )
        except docker.errors.ContainerError as exc:
            detail = (exc.stderr or b"").decode(errors="replace").strip()[-2000:]
            raise DatabaseToolError(
                f"{what} on archive volume {self.volume} failed: {detail}", exc.exit_status
            ) from None
        return bytes(out).decode()

    # --- what is in it ----------------------------------------------------------------------------------------

    def base_backups(self) -> list[BaseBackup]:
        """Complete base backups, oldest first (in-progress `.partial-*` directories are not listed)."""
        script = (
            f'for d in {ARCHIVE_DIR}/base/*/; do [ -f "$d/kaizenity-backup.env" ] && '
            '{ echo "@@"; cat "$d/kaizenity-backup.env"; }; done; true'
        )
        backups = []
        for block in self.sh(script, what="listing base backups").split("@@"):
            values = dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)
            if {"stamp", "started", "finished", "start_wal", "start_lsn"} <= values.keys():
                backups.append(
                    BaseBackup(
                        stamp=values["stamp"],
                        started=datetime.fromisoformat(values["started"]),
                        finished=datetime.fromisoformat(values["finished"]),
                        start_lsn=values["start_lsn"],
                        start_wal=values["start_wal"],
                        end_lsn=values.get("end_lsn", ""),
                    )
                )
        return sorted(backups, key=lambda b: b.stamp)

    def wal_files(self) -> list[WalFile]:
        script = f'cd {ARCHIVE_DIR}/wal && for f in *; do [ -f "$f" ] && stat -c \'%n %s %Y\' "$f"; done; true'
        files = []
        for line in self.sh(script, what="listing WAL").splitlines():
            name, size, mtime = line.rsplit(" ", 2)
            files.append(WalFile(name, int(size), float(mtime)))
        return files

    # --- verification -----------------------------------------------------------------------------------------

    def verify(self, base: BaseBackup) -> None:
        """pg_verifybackup of `base`, sha256 of every completed WAL segment, and an unbroken segment chain from
        the base backup's start to the newest segment. Raises ArchiveCorrupted naming every problem."""
        problems = []
        try:
            self.sh(
                f"pg_verifybackup -q {VERIFY_IGNORE} {ARCHIVE_DIR}/base/{base.stamp}",
                what=f"pg_verifybackup of {base.stamp}",
            )
        except DatabaseToolError as exc:
            problems.append(f"base backup {base.stamp}: {exc}")
        sums = f"cd {ARCHIVE_DIR}/wal && [ -s SHA256SUMS ] && sha256sum --quiet -c SHA256SUMS 2>&1 || true"
        for line in self.sh(sums, what="WAL checksums").splitlines():
            if line.strip() and not line.startswith("sha256sum: WARNING"):
                problems.append(f"WAL {line.strip()}")
        problems += chain_gaps(base.first_archived_wal, [f.name for f in self.wal_files()])
        if problems:
            raise ArchiveCorrupted(
                f"archive {self.volume} failed verification; nothing was touched: {'; '.join(problems[:10])}. "
                "Fix: restore from an older base backup (--to-time before the damage) or another copy of the archive."
            )

    def checksum_new_segments(self) -> None:
        """Have the sidecar checksum segments completed since its last pass (before verifying)."""
        if self.sidecar:
            self.sh(f"{AGENT_PATH} sums", what="checksumming new WAL segments")

    # --- writing (through the sidecar only) -------------------------------------------------------------------

    def take_base_backup(self) -> str:
        """A base backup now (the agent's own command, so it shares the schedule's lock and retention)."""
        if not self.sidecar:
            raise ArchiveError(f"archive {self.volume}: the backup sidecar is not running. Fix: `kaizenity up`.")
        try:
            return self.sh(f"{AGENT_PATH} base 2>&1", what="base backup")
        except DatabaseToolError as exc:
            if exc.exit_code == BUSY_EXIT:
                raise ArchiveError("a base backup is already running (scheduled). Fix: wait and retry.") from None
            raise

    def put_file(self, relative: str, data: bytes) -> None:
        """Write one file (0600, owned by the postgres user) into the archive."""
        if not self.sidecar:
            raise ArchiveError(f"archive {self.volume}: the backup sidecar is not running. Fix: `kaizenity up`.")
        container = self.client.containers.get(self.sidecar)
        directory, _, name = f"{ARCHIVE_DIR}/{relative}".rpartition("/")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), 999, 999, 0o600
            archive.addfile(info, io.BytesIO(data))
        if not container.put_archive(directory, buffer.getvalue()):
            raise ArchiveError(f"could not write {relative} into {self.sidecar}")

    def read_file(self, relative: str) -> bytes | None:
        # The closing newline matters: a throw-away reader's output comes from its log, and Docker drops an
        # unterminated last line now and then (seen: the imported archive's key read as missing).
        script = f'f={ARCHIVE_DIR}/{shlex.quote(relative)}; [ -f "$f" ] && base64 -w0 "$f"; echo'
        import base64

        text = self.sh(script, what=f"reading {relative}").strip()
        return base64.b64decode(text) if text else None


def segment_index(name: str) -> tuple[int, int]:
    """(timeline, absolute segment number) of a WAL segment file name."""
    match = SEGMENT.match(name)
    if not match:
        raise ValueError(f"{name} is not a WAL segment name")
    tli, log, seg = (int(part, 16) for part in match.groups()[:3])
    return tli, log * SEGMENTS_PER_XLOGID + seg


def chain_gaps(start_wal: str, names: list[str]) -> list[str]:
    """Missing segments between the base backup's first segment and the newest one of its timeline."""
    timeline, first = segment_index(start_wal)
    present = {segment_index(n)[1] for n in names if SEGMENT.match(n) and segment_index(n)[0] == timeline}
    if not present or max(present) < first:
        return [f"no WAL from {start_wal} onwards in the archive"]
    missing = [n for n in range(first, max(present) + 1) if n not in present]
    return [
        f"WAL segment {timeline:08X}{n // SEGMENTS_PER_XLOGID:08X}{n % SEGMENTS_PER_XLOGID:08X}: missing"
        for n in missing[:5]
    ]
