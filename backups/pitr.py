"""`kaizenity restore --to-time T | --latest`: point-in-time recovery from the archive into an environment.

Order, so that every refusal happens before anything in the target changes:
1. pick the newest base backup finished before T; verify it (pg_verifybackup) and the WAL (sha256 of every
   completed segment, no gap in the chain) -> ArchiveCorrupted;
2. refuse when the target runs n8n with another encryption key than the archive's, or holds data (no --force);
3. rehearse in a scratch server: base backup + WAL replay to T, then per-table counts and bounded-memory digests,
   and every n8n credential must decrypt with the key;
4. only then: stop the target's n8n, sidecar and PostgreSQL, replace its data directory with the scratch one,
   start PostgreSQL, give the environment's roles the environment's passwords, check the digests equal the
   scratch's, set the old archive aside (a new timeline starts), start everything again.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backups import catalog
from backups.archive import IMAGE_DATA_DIR, KEY_FILE, Archive, BaseBackup
from backups.catalog import TableStats
from backups.container_db import ContainerDatabase, DatabaseToolError
from backups.crypto import decrypt, load_key, n8n_decrypt, scram_verifier
from backups.scratch import PGDATA, RESTORE_MARKER, ScratchServer
from backups.target import DataTarget, container_env
from infra.services.backup import ARCHIVE_DIR
from infra.services.common import LABEL_PREFIX, LABEL_SERVICE

Progress = Callable[[str], None]
Stats = dict[str, dict[str, TableStats]]


class RestoreRefused(RuntimeError):
    """A precondition of the restore does not hold; nothing was changed."""


class RestoreMismatch(RuntimeError):
    """The target's tables differ from the verified scratch server's."""


@dataclass(frozen=True)
class RestoreReport:
    base_backup: str
    to_time: datetime | None
    tables: int
    rows: int
    credentials: int
    seconds: float


def choose_base(backups: list[BaseBackup], to_time: datetime | None) -> BaseBackup:
    """The newest base backup that finished before `to_time` (or the newest of all for --latest)."""
    usable = [b for b in backups if to_time is None or b.finished < to_time]
    if not usable:
        oldest = backups[0].finished.isoformat() if backups else "none yet"
        raise RestoreRefused(
            f"no base backup finished before {to_time.isoformat() if to_time else 'now'} (oldest: {oldest}). "
            "Nothing was changed. Fix: pick a later --to-time, or wait for the first base backup."
        )
    return usable[-1]


def archive_n8n_key(archive: Archive) -> str:
    """n8n's encryption key as `kaizenity backup` stored it in the archive (decrypted with the backup key)."""
    blob = archive.read_file(KEY_FILE)
    if blob is None:
        raise RestoreRefused(
            f"archive {archive.volume} holds no n8n encryption key: restored credentials could not be checked or "
            "used. Nothing was changed. Fix: run `kaizenity backup` once on the source environment (it stores the "
            "key, encrypted), or restore the key by hand and pass --skip-key-check."
        )
    return decrypt(load_key(), blob, what=f"{archive.volume}:{KEY_FILE}").decode()


def restore_point_in_time(
    client: Any,
    archive: Archive,
    target: DataTarget,
    *,
    to_time: datetime | None,
    force: bool = False,
    progress: Progress = lambda _m: None,
) -> RestoreReport:
    """Restore `archive` into `target` up to `to_time` (None: as far as the WAL goes)."""
    began = datetime.now(UTC)
    archive.checksum_new_segments()
    base = choose_base(archive.base_backups(), to_time)
    progress(f"base backup {base.stamp} (finished {base.finished.isoformat()}); verifying base backup and WAL")
    archive.verify(base)
    n8n_key = archive_n8n_key(archive)
    if not hmac.compare_digest(n8n_key.encode(), target.encryption_key.encode()):
        raise RestoreRefused(
            f"environment '{target.prefix}' runs n8n with another encryption key than the archive's: restored "
            "credentials would not decrypt. Nothing was changed. Fix: `kaizenity backup key --out FILE` on the "
            "archive, then bring the environment up with it (`kaizenity up --local --n8n-encryption-key-file FILE` "
            "or `pulumi config set --secret kaizenity:n8nEncryptionKey`)."
        )
    live = ContainerDatabase(client, target.postgres_container, target.superuser)
    _check_empty(live, target, force)
    scratch = ScratchServer(client, archive, base, target.prefix)
    try:
        scratch.start(to_time, progress)
        scratch_db = scratch.wait_promoted(target.superuser)
        progress("scratch server recovered; computing per-table counts and digests")
        expected = all_stats(scratch_db)
        credentials = check_credentials(scratch_db, target.n8n_database, n8n_key)
        progress(f"scratch verified: {_count(expected)} tables, {credentials} n8n credentials decrypt")
        scratch.stop()

        def check_target() -> None:  # before n8n starts writing again
            restored = ContainerDatabase(client, target.postgres_container, target.superuser)
            reconcile_role_passwords(client, restored, target)
            _compare(expected, all_stats(restored))
            progress("target equals the verified scratch server")
            close_interrupted_executions(restored, target.n8n_database, progress)

        _swap_into_target(client, target, scratch, check_target, progress)
    finally:
        scratch.remove()
    tables, rows = _count(expected), sum(s.rows for per in expected.values() for s in per.values())
    seconds = (datetime.now(UTC) - began).total_seconds()
    return RestoreReport(base.stamp, to_time, tables, rows, credentials, seconds)


def all_stats(db: ContainerDatabase) -> Stats:
    """Counts and digests of every user table of every non-template database except `postgres`."""
    names = db.query("postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'")
    return {name: catalog.table_stats(db, name) for (name,) in names}


def check_credentials(db: ContainerDatabase, n8n_database: str, key: str) -> int:
    """Every n8n credential decrypts with `key`; returns how many there are."""
    if not catalog.database_exists(db, n8n_database):
        return 0
    rows = db.query(n8n_database, "SELECT id, data FROM credentials_entity")
    failed = []
    for credential_id, data in rows:
        try:
            n8n_decrypt(key, data)
        except ValueError:
            failed.append(credential_id)
    if failed:
        raise RestoreRefused(
            f"{len(failed)} of {len(rows)} restored n8n credentials do not decrypt with the archive's key "
            f"(ids {', '.join(failed[:5])}). Nothing in the target was changed. Fix: the archive's key file is not "
            "the key these credentials were written with; find the right key before restoring."
        )
    return len(rows)


def reconcile_role_passwords(client: Any, db: ContainerDatabase, target: DataTarget) -> None:
    """The restored cluster holds the source's role passwords: give the superuser and n8n's role the target
    environment's (as SCRAM verifiers, so no plaintext reaches a command line or log)."""
    containers = {c.labels.get(LABEL_SERVICE): c for c in _environment_containers(client, target.prefix)}
    pg_env = container_env(containers["postgres"])
    roles = {target.superuser: pg_env.get("POSTGRES_PASSWORD", "")}
    n8n = containers.get("n8n")
    if n8n is not None:
        n8n_env = container_env(n8n)
        roles[n8n_env.get("DB_POSTGRESDB_USER", "n8n")] = n8n_env.get("DB_POSTGRESDB_PASSWORD", "")
    for role, password in roles.items():
        if password:
            quoted = '"' + role.replace('"', '""') + '"'
            db.execute("postgres", f"ALTER ROLE {quoted} PASSWORD '{scram_verifier(password)}'")


def close_interrupted_executions(db: ContainerDatabase, n8n_database: str, progress: Progress) -> None:
    """Executions that were running at the restore point ran in the old environment and end there: mark them
    canceled before n8n starts (n8n would mark them "crashed", which on-call reads as a workflow failing)."""
    if not catalog.database_exists(db, n8n_database):
        return
    sql = (
        "WITH closed AS (UPDATE execution_entity SET status = 'canceled', \"stoppedAt\" = now() "
        "WHERE status IN ('new', 'running') RETURNING id) SELECT count(*) FROM closed"
    )
    closed = int(db.query(n8n_database, sql)[0][0])
    if closed:
        progress(f"{closed} n8n execution(s) in flight at the restore point marked canceled")


def _check_empty(db: ContainerDatabase, target: DataTarget, force: bool) -> None:
    names = {"app": target.app_database, "n8n": target.n8n_database}
    occupied = [
        database
        for role, database in names.items()
        if catalog.database_exists(db, database) and catalog.holds_data(db, database, role)
    ]
    if occupied and not force:
        raise RestoreRefused(
            f"database(s) {', '.join(occupied)} of '{target.prefix}' already hold data; restore replaces the whole "
            "server. Nothing was changed. Fix: `kaizenity backup` first, then re-run with --force."
        )


def _environment_containers(client: Any, prefix: str) -> list[Any]:
    containers = client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}={prefix}"})
    return [c for c in containers if c.labels.get(LABEL_SERVICE) != "restore-scratch"]


def _swap_into_target(
    client: Any, target: DataTarget, scratch: ScratchServer, check: Callable[[], None], progress: Progress
) -> None:
    """Stop the writers and PostgreSQL, copy the scratch data directory in, start PostgreSQL, run `check`, and
    start everything that was stopped again, whatever happens."""
    try:
        _copy_into_target(client, target, scratch, progress)
        check()
    finally:
        _start_all(client, target, progress)


def _copy_into_target(client: Any, target: DataTarget, scratch: ScratchServer, progress: Progress) -> None:
    containers = {c.labels.get(LABEL_SERVICE): c for c in _environment_containers(client, target.prefix)}
    postgres = containers["postgres"]
    for service, container in containers.items():
        if service not in {"postgres", "gateway"} and container.status in {"running", "paused"}:
            if container.status == "paused":
                container.unpause()
            container.stop(timeout=60)
    progress(f"stopped n8n and the backup sidecar of '{target.prefix}'")
    postgres.stop(timeout=120)
    pgdata = _volume_at(postgres, PGDATA)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    script = f"""set -e
find /target -mindepth 1 -delete
cp -a /source/. /target/
sed -i '/^{RESTORE_MARKER[:20]}/,$d' /target/postgresql.auto.conf
"""
    volumes = {pgdata: {"bind": "/target", "mode": "rw"}, scratch.name: {"bind": "/source", "mode": "ro"}}
    sidecar = containers.get("backup")
    if sidecar is not None:
        # The restored server starts a new timeline with another history: the sidecar starts a fresh archive
        # (and takes a base backup at once); the old one stays beside it, named by the time of the restore.
        volumes[_volume_at(sidecar, ARCHIVE_DIR)] = {"bind": "/archive", "mode": "rw"}
        script += f"""mkdir -p /archive/replaced-{stamp}
for d in wal base; do [ -d /archive/$d ] && mv /archive/$d /archive/replaced-{stamp}/; done
mkdir -p /archive/wal /archive/base && chown 999:999 /archive/wal /archive/base && chmod 700 /archive/wal /archive/base
"""
    client.containers.run(
        scratch.archive.image,
        entrypoint=["bash", "-c", script],
        volumes=volumes,
        network_mode="none",
        tmpfs={IMAGE_DATA_DIR: "size=1m"},  # else the image's VOLUME leaves an anonymous volume behind
        remove=True,
    )
    progress("data directory replaced by the verified scratch copy; starting PostgreSQL")
    postgres.start()
    _wait_ready(client, target)


def _wait_ready(client: Any, target: DataTarget, timeout_s: float = 300) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            db = ContainerDatabase(client, target.postgres_container, target.superuser)
            db.query("postgres", "SELECT 1")
            return
        except DatabaseToolError:
            time.sleep(1)
    raise RuntimeError(f"{target.postgres_container} did not accept connections after the restore. Fix: docker logs")


def _start_all(client: Any, target: DataTarget, progress: Progress) -> None:
    started = []
    for container in _environment_containers(client, target.prefix):
        container.reload()
        if container.status != "running":
            container.start()
            started.append(container.labels.get(LABEL_SERVICE, container.name))
    if started:
        progress(f"started {', '.join(sorted(started))}")


def _volume_at(container: Any, destination: str) -> str:
    return str(next(m["Name"] for m in container.attrs["Mounts"] if m.get("Destination") == destination))


def _compare(expected: Stats, actual: Stats) -> None:
    problems = []
    for database, tables in expected.items():
        for table, stats in tables.items():
            got = actual.get(database, {}).get(table)
            if got != stats:
                problems.append(f"{database}.{table}: {stats} expected, {got} found")
    if problems:
        raise RestoreMismatch(
            "the target differs from the verified scratch server: " + "; ".join(problems[:10]) + ". Fix: run the "
            "restore again; if it repeats, report it with `docker logs` of the PostgreSQL container."
        )


def _count(stats: Stats) -> int:
    return sum(len(tables) for tables in stats.values())
