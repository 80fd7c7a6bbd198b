"""Continuous backups and point-in-time restore against real containers.

Two environments of the ci stack with the backup sidecar enabled: the source (WAL streamed, base backups) and a
fresh target brought up with the source's n8n key, as disaster recovery does. Everything runs for real: the
sidecar's pg_receivewal and pg_basebackup, the scratch server's WAL replay, the swap into the target, the
reconciliation and the health probes.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backups.archive import Archive, ArchiveCorrupted
from backups.backup import take_backup
from backups.pitr import RestoreRefused, restore_point_in_time
from backups.reconcile import reconcile_endpoints
from backups.target import DataTarget, find_target
from healthchecks.config import build_plan
from healthchecks.result import Status
from healthchecks.runner import run
from infra import local_engine
from infra.docker_engine import docker_client
from infra.local_endpoints import LocalEndpoints

pytestmark = pytest.mark.integration

BACKUPS = {"backups": {"enabled": True, "intervalMinutes": 600, "retention": 3, "checkpoint": "fast"}}
SEED = {"heartbeatUnit": "seconds", "heartbeatEvery": "2"}


@pytest.fixture(scope="module", autouse=True)
def private_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A backup key and local records of this module's own, never the developer's."""
    home = tmp_path_factory.mktemp("backup-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIZENITY_BACKUP_KEY_FILE", str(home / "backup.key"))
        patch.setenv("KAIZENITY_STATE_DIR", str(home / "state"))
        yield home


def _start(prefix: str, **kwargs: Any) -> LocalEndpoints:
    try:
        _, endpoints = local_engine.start(
            "ci", prefix=prefix, offline=True, free_ports=True, overrides=BACKUPS, seed_values=SEED, **kwargs
        )
    except Exception:
        local_engine.stop(prefix)
        raise
    return endpoints


@pytest.fixture(scope="module")
def source(private_keys: Path) -> Iterator[LocalEndpoints]:
    prefix = f"kzt-bsrc-{secrets.token_hex(3)}"
    try:
        endpoints = _start(prefix)
        assert endpoints.database_url
        with psycopg.connect(endpoints.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE pitr_probe (id int PRIMARY KEY, note text)")
        # What the README's drill starts with: one `kaizenity backup`, which also stores n8n's key (encrypted).
        take_backup(docker_client(), data_target(endpoints), archive_of(endpoints))
        yield endpoints
    finally:
        local_engine.stop(prefix)


@pytest.fixture(scope="module")
def target(source: LocalEndpoints) -> Iterator[LocalEndpoints]:
    """A fresh environment brought up with the source's n8n key (what the drill does after losing the host)."""
    prefix = f"kzt-bdst-{secrets.token_hex(3)}"
    try:
        # Neither migrated nor seeded: the restore replaces both databases, and the reconciliation seeds.
        key = {"n8nEncryptionKey": source.secrets["n8nEncryptionKey"]}
        yield _start(prefix, preset_secrets=key, migrate=False)
    finally:
        local_engine.stop(prefix)


def data_target(endpoints: LocalEndpoints) -> DataTarget:
    return find_target(docker_client(), endpoints.prefix)


def archive_of(endpoints: LocalEndpoints) -> Archive:
    return Archive.of_environment(docker_client(), endpoints.prefix)


def probe_ids(url: str) -> list[int]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        if conn.execute("SELECT to_regclass('public.pitr_probe')").fetchone() == (None,):
            return []
        return [row[0] for row in conn.execute("SELECT id FROM pitr_probe ORDER BY id")]


class Inserter:
    """Inserts one row every few milliseconds (autocommit), remembering when each commit returned."""

    def __init__(self, url: str, first_id: int) -> None:
        self.url, self.next_id = url, first_id
        self.committed: list[tuple[int, float]] = []
        self.stop_event, self.pause_event = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    if self.pause_event.is_set():
                        time.sleep(0.01)
                        continue
                    conn.execute("INSERT INTO pitr_probe VALUES (%s, 'row')", [self.next_id])
                    self.committed.append((self.next_id, time.time()))
                    self.next_id += 1
                    time.sleep(0.01)
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Inserter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.errors, self.errors


def wait_archived(endpoints: LocalEndpoints, timeout_s: float = 60) -> None:
    """Until the replication slot shows nothing left to stream."""
    assert endpoints.database_url
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(endpoints.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) FROM pg_replication_slots "
                "WHERE slot_name = 'kaizenity_archive'"
            ).fetchone()
            if row and row[0] and row[1] == 0:
                return
            time.sleep(0.5)
    raise AssertionError("WAL streaming did not catch up")


def watch_status(container: Any, states: list[str], samples: int = 20) -> None:
    for _ in range(samples):
        container.reload()
        states.append(container.status)
        time.sleep(0.1)


def test_backup_runs_while_writers_keep_writing(source: LocalEndpoints) -> None:
    """No writer paused: rows commit during the base backup, and n8n is never paused."""
    assert source.database_url
    client = docker_client()
    n8n = client.containers.get(source.containers["n8n"])
    states: list[str] = []
    with Inserter(source.database_url, 1) as inserter:
        time.sleep(0.5)
        before = len(inserter.committed)
        watcher = threading.Thread(target=watch_status, args=(n8n, states))
        watcher.start()
        made = take_backup(client, data_target(source), archive_of(source))
        during = len(inserter.committed) - before
        watcher.join()
    assert during > 0, "inserts committed while the base backup ran"
    assert set(states) == {"running"}, f"n8n was never paused: {set(states)}"
    assert made.stamp in [b.stamp for b in archive_of(source).base_backups()]
    files = (
        archive_of(source)
        .sh(
            "find /archive -path /archive/keys -prune -o \\( -type f -perm /077 \\) -print; "
            "find /archive -type d -perm /077 -print; stat -c %a /archive/keys/n8n-encryption-key.enc",
            what="permissions",
        )
        .split()
    )
    assert files == ["600"], f"archive files 0600 and directories 0700, found: {files}"
    key = archive_of(source).read_file("keys/n8n-encryption-key.enc") or b""
    assert source.secrets["n8nEncryptionKey"].encode() not in key, "the key is stored encrypted"


def test_restore_to_a_time_between_two_writes_gets_exactly_the_rows_before(
    source: LocalEndpoints, target: LocalEndpoints
) -> None:
    assert source.database_url
    assert target.database_url
    with Inserter(source.database_url, 10_000) as inserter:
        time.sleep(1.5)
        inserter.pause_event.set()
        time.sleep(0.6)
        before = [row_id for row_id, _ in inserter.committed]
        to_time = datetime.now(UTC)
        time.sleep(0.6)
        inserter.pause_event.clear()
        time.sleep(1.5)
    wait_archived(source)
    expected = sorted(i for i in probe_ids(source.database_url) if i < 10_000) + sorted(before)
    report = restore_point_in_time(
        docker_client(), archive_of(source), data_target(target), to_time=to_time, progress=print
    )
    assert report.to_time == to_time
    assert probe_ids(target.database_url) == expected, "exactly the rows committed before the target time"
    assert len(inserter.committed) > len(before), "rows were written after the target time (and are absent)"


def test_latest_restore_loses_nothing_that_was_streamed(source: LocalEndpoints, target: LocalEndpoints) -> None:
    """--latest replays up to the last streamed record: the archive interval is one synchronous flush."""
    assert source.database_url
    assert target.database_url
    with Inserter(source.database_url, 20_000):
        time.sleep(2)
    wait_archived(source)
    expected = probe_ids(source.database_url)
    restore_point_in_time(docker_client(), archive_of(source), data_target(target), to_time=None, force=True)
    assert probe_ids(target.database_url) == expected


def test_drill_ends_with_health_ok_and_the_seed_workflows_running(target: LocalEndpoints) -> None:
    """After the restores above, the environment's record and the restored n8n are reconciled: health is OK."""
    reconcile_endpoints(target, progress=print)
    assert target.database_url
    assert target.n8n_database_url
    with psycopg.connect(target.n8n_database_url, autocommit=True) as conn:
        seeder_keys = conn.execute("SELECT label FROM user_api_keys WHERE label LIKE 'kaizenity-seeder%'").fetchall()
    # The restored database brought the source's keys along; the reconciling seed deleted them and its own.
    assert seeder_keys == [], f"seeder API keys left after reconcile: {seeder_keys}"
    with psycopg.connect(target.database_url, autocommit=True) as conn:
        restored_at = conn.execute("SELECT now()").fetchone()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the heartbeat workflow writes every 2 s once it runs again
            beat = conn.execute("SELECT max(beat_at) FROM ops.heartbeats").fetchone()
            if beat and beat[0] and restored_at and beat[0] > restored_at[0]:
                break
            time.sleep(2)
        else:
            raise AssertionError("the seed heartbeat workflow did not run after the restore")
    wait_for_base_backup(target)
    with psycopg.connect(target.database_url, autocommit=True) as conn:
        elapsed = conn.execute("SELECT extract(epoch FROM now() - %s)", restored_at).fetchone()
    # Executions that failed while the earlier restores swapped the data out from under n8n are history; the drill
    # asks that nothing fails since the environment was reconciled.
    since_restore_min = float(elapsed[0]) / 60 if elapsed else 60.0
    settings = {
        "defaults": {"timeout": 10},
        "database": {"url": target.database_url},
        "n8n": {
            "url": target.n8n_url,
            "database_url": target.n8n_reader_database_url,
            "failed_executions_window_minutes": since_restore_min,
        },
        "gateway": {"url": target.gateway_url, "ca_file": target.ca_file, "tls_internal": True},
        "backups": {"url": target.database_url},
    }
    report = run(build_plan(settings).select(["database", "n8n", "gateway", "backups"], []))
    problems = [(r.probe, r.summary) for r in report.results if r.status is not Status.OK]
    assert not problems, problems


def wait_for_base_backup(endpoints: LocalEndpoints, timeout_s: float = 180) -> None:
    """The restored environment's sidecar starts a fresh archive with a base backup at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if archive_of(endpoints).base_backups():
                return
        time.sleep(2)
    raise AssertionError("no base backup after the restore")


def test_sigkill_of_postgres_during_a_base_backup_then_the_next_backup_succeeds(source: LocalEndpoints) -> None:
    client = docker_client()
    sidecar = client.containers.get(source.containers["backup"])
    postgres = client.containers.get(source.containers["postgres"])
    result: dict[str, Any] = {}

    def slow_backup() -> None:  # throttled so that the kill lands mid-copy
        result["run"] = sidecar.exec_run(
            ["kaizenity-backup-agent", "base"], user="postgres", environment={"BACKUP_MAX_RATE": "1M"}
        )

    worker = threading.Thread(target=slow_backup)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "partial" not in archive_of(source).sh("ls -a /archive/base", what="ls"):
        time.sleep(0.2)
    time.sleep(1)
    postgres.kill(signal="SIGKILL")
    worker.join(timeout=120)
    assert result["run"].exit_code != 0, "the interrupted base backup reports failure"
    assert "partial" not in archive_of(source).sh("ls -a /archive/base", what="ls"), "no half backup left"
    postgres.start()
    wait_accepting(source)
    made = take_backup(client, data_target(source), archive_of(source))
    archive_of(source).verify(made)


def wait_accepting(endpoints: LocalEndpoints, timeout_s: float = 180) -> None:
    assert endpoints.database_url
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(endpoints.database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
            return
        time.sleep(1)
    raise AssertionError("PostgreSQL did not come back after the SIGKILL")


@contextlib.contextmanager
def flipped_byte(endpoints: LocalEndpoints, relative: str) -> Iterator[None]:
    """One byte of an archive file inverted for the duration (restored afterwards)."""
    sidecar = docker_client().containers.get(endpoints.containers["backup"])
    path = f"/archive/{relative}"
    read = f"dd if={path} bs=1 skip=4096 count=1 2>/dev/null | od -An -tu1"
    original = int(sidecar.exec_run(["bash", "-c", read], user="postgres").output.split()[0])

    def write(value: int) -> None:
        cmd = f"printf '\\{value:03o}' | dd of={path} bs=1 seek=4096 count=1 conv=notrunc 2>/dev/null"
        assert sidecar.exec_run(["bash", "-c", cmd], user="postgres").exit_code == 0

    write(original ^ 0xFF)
    try:
        yield
    finally:
        write(original)


@pytest.mark.parametrize("kind", ["wal", "base"])
def test_a_corrupted_archive_file_is_detected_before_the_restore_touches_anything(
    source: LocalEndpoints, target: LocalEndpoints, kind: str
) -> None:
    assert target.database_url
    archive = archive_of(source)
    archive.checksum_new_segments()
    if kind == "wal":
        sums = archive.sh("cat /archive/wal/SHA256SUMS", what="sums").split()
        relative = "wal/" + sums[-1]
    else:
        relative = f"base/{archive.base_backups()[-1].stamp}/global/pg_control"
    before = probe_ids(target.database_url)
    started = {c.name: c.attrs["State"]["StartedAt"] for c in _containers(target)}
    with flipped_byte(source, relative), pytest.raises(ArchiveCorrupted, match="nothing was touched"):
        restore_point_in_time(docker_client(), archive, data_target(target), to_time=None, force=True)
    assert probe_ids(target.database_url) == before
    assert {c.name: c.attrs["State"]["StartedAt"] for c in _containers(target)} == started, "nothing restarted"


def test_restore_into_an_environment_with_another_key_is_refused(
    source: LocalEndpoints, target: LocalEndpoints
) -> None:
    wrong = data_target(target)
    wrong = DataTarget(**{**wrong.__dict__, "encryption_key": "not-the-archives-key-" + secrets.token_hex(8)})
    with pytest.raises(RestoreRefused, match="another encryption key"):
        restore_point_in_time(docker_client(), archive_of(source), wrong, to_time=None, force=True)


def _containers(endpoints: LocalEndpoints) -> list[Any]:
    client = docker_client()
    return [client.containers.get(name) for name in endpoints.containers.values()]


def test_export_is_encrypted_and_imports_into_a_verifiable_archive(source: LocalEndpoints, tmp_path: Path) -> None:
    from backups.export import export_archive, import_archive

    client = docker_client()
    archive = archive_of(source)
    out = tmp_path / "archive.kzx"
    stamp = export_archive(client, archive, out)
    assert out.stat().st_mode & 0o777 == 0o600
    with out.open("rb") as handle:
        head = handle.read(1 << 20)
    assert b"PG_VERSION" not in head, "nothing readable leaves the environment"
    assert b"backup_label" not in head
    volume = f"kzt-bimport-{secrets.token_hex(3)}"
    try:
        import_archive(client, out, volume, archive.image)
        imported = Archive(client, volume, archive.image)
        (base,) = imported.base_backups()
        assert base.stamp == stamp
        imported.verify(base)
        assert imported.read_file("keys/n8n-encryption-key.enc") == archive.read_file("keys/n8n-encryption-key.enc")
    finally:
        with contextlib.suppress(Exception):
            client.volumes.get(volume).remove(force=True)
