"""The migration runner: applies pending migrations exactly once, in order, refusing drift.

Guarantees, and how:
- one runner at a time per database: a session-level advisory lock on a dedicated connection, waited for with a
  deadline (a stuck runner is named, not waited for forever); the history is re-read after the lock is held, so
  runners that queued behind another find nothing left to do;
- all or nothing per migration: each file and its history row commit in one transaction (a killed runner leaves
  no half-applied file: the server rolls the transaction back and releases the lock with the session);
- reviewed content only: the SHA-256 of every applied file is recorded; a changed, missing or out-of-order file
  stops the run before anything is applied;
- no endless blocking on busy tables: `lock_timeout` per migration.

A small runner of our own rather than yoyo-migrations: the Pulumi resource needs the pending set as data (its
diff), the health check reads the same history table, and yoyo's lock is a table row that a killed runner leaves
behind, where a session advisory lock dies with its session.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from bootstrap.catalog import Migration, load_migrations

HISTORY_TABLE = "kaizenity_meta.schema_migrations"
LOCK_KEY = 7_310_594_238_941_230_419  # any fixed bigint: "the kaizenity migration lock" for this database
DEFAULT_LOCK_WAIT_S = 120.0
DEFAULT_STATEMENT_LOCK_TIMEOUT = "30s"

Progress = Callable[[str], None]

_HISTORY_DDL = f"""
CREATE SCHEMA IF NOT EXISTS kaizenity_meta;
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    applied_by  text NOT NULL DEFAULT current_user
);
"""


class MigrationError(RuntimeError):
    """Migrations could not be applied; the message names the file, the cause and the fix."""


class MigrationDrift(MigrationError):
    """Applied migrations no longer match the files: refused before anything was applied."""


class MigrationLockTimeout(MigrationError):
    """Another runner held the migration lock for longer than the wait allowed."""


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    duration_ms: int


@dataclass(frozen=True)
class MigrationPlan:
    """What a run would do: pending files in order, what is applied, and drift that forbids any run."""

    pending: tuple[Migration, ...]
    applied: tuple[AppliedMigration, ...]
    drift: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.drift


def read_plan(conn: psycopg.Connection, migrations: Sequence[Migration]) -> MigrationPlan:
    """Compare the files with the history table (absent table: nothing applied yet)."""
    applied = read_history(conn)
    by_version = {m.version: m for m in migrations}
    drift = []
    for row in applied:
        migration = by_version.get(row.version)
        if migration is None:
            drift.append(f"{row.version:04d}_{row.name}.sql was applied but its file is missing")
        elif migration.checksum != row.checksum:
            drift.append(
                f"{migration.label} changed after it was applied (recorded sha256 {row.checksum[:12]}…, "
                f"file {migration.checksum[:12]}…)"
            )
    done = {row.version for row in applied}
    newest = max(done, default=0)
    pending = tuple(m for m in migrations if m.version not in done)
    drift += [
        f"{m.label} is older than the applied {newest:04d}: renumber it after {newest:04d}"
        for m in pending
        if m.version < newest
    ]
    return MigrationPlan(pending=pending, applied=tuple(applied), drift=tuple(drift))


def apply_migrations(
    conninfo: str,
    migrations: Sequence[Migration] | None = None,
    *,
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S,
    statement_lock_timeout: str = DEFAULT_STATEMENT_LOCK_TIMEOUT,
    progress: Progress = lambda _m: None,
) -> list[Migration]:
    """Apply every pending migration; return those this run applied (empty when up to date)."""
    files = list(load_migrations() if migrations is None else migrations)
    with psycopg.connect(conninfo, autocommit=True, application_name="kaizenity-migrations") as conn:
        # PostgreSQL 14+: notice a vanished runner (killed, network gone) within a second, even mid-statement,
        # so its transaction rolls back and its lock is released at once instead of after the statement ends.
        conn.execute("SET client_connection_check_interval = '1s'")
        _acquire_lock(conn, lock_wait_s)
        try:
            conn.execute(_HISTORY_DDL)
            plan = read_plan(conn, files)
            if plan.drift:
                raise MigrationDrift(
                    "refusing to migrate, nothing was applied: " + "; ".join(plan.drift) + ". Fix: restore the "
                    "applied files as they were (git checkout) and put changes in a new migration file."
                )
            for migration in plan.pending:
                progress(f"applying {migration.label}")
                _apply_one(conn, migration, statement_lock_timeout)
            return list(plan.pending)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def current_plan(conninfo: str, migrations: Sequence[Migration] | None = None) -> MigrationPlan:
    """The plan without taking the lock or changing anything (`status`, `plan`, `verify`, the health check)."""
    files = list(load_migrations() if migrations is None else migrations)
    with psycopg.connect(conninfo, autocommit=True, application_name="kaizenity-migrations") as conn:
        return read_plan(conn, files)


def _apply_one(conn: psycopg.Connection, migration: Migration, lock_timeout: str) -> None:
    started = time.monotonic()
    try:
        if migration.transactional:
            with conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
                conn.execute(migration.sql.encode())  # bytes: run as written, no client-side placeholder parsing
                conn.execute("RESET ROLE")  # files may SET LOCAL ROLE; the history row is written as the runner
                _record(conn, migration, started)
        else:
            conn.execute(migration.sql.encode())
            _record(conn, migration, started)
    except psycopg.Error as exc:
        raise MigrationError(
            f"{migration.label} failed and was rolled back: {exc.diag.message_primary or exc}"
            f"{_position(migration, exc)}. Fix: correct the file (it is not applied yet) and run again."
        ) from exc


def _record(conn: psycopg.Connection, migration: Migration, started: float) -> None:
    conn.execute(
        f"INSERT INTO {HISTORY_TABLE} (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)",
        (migration.version, migration.name, migration.checksum, int((time.monotonic() - started) * 1000)),
    )


def _position(migration: Migration, exc: psycopg.Error) -> str:
    position = exc.diag.statement_position
    if not position or not position.isdigit():
        return ""
    line = migration.sql[: int(position)].count("\n") + 1
    return f" (line {line})"


def _acquire_lock(conn: psycopg.Connection, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        if time.monotonic() >= deadline:
            raise MigrationLockTimeout(
                f"another migration runner has held the lock for over {wait_s:.0f} s ({_lock_holder(conn)}). "
                "Fix: wait for it to finish; if it is stuck, end that session with pg_terminate_backend(pid)."
            )
        time.sleep(0.2)


def _lock_holder(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "SELECT a.pid, a.application_name, a.client_addr::text, now() - a.xact_start FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND (l.classid::bigint << 32 | l.objid::bigint) = %s LIMIT 1",
        (LOCK_KEY,),
    ).fetchone()
    return (
        "holder unknown"
        if row is None
        else f"pid {row[0]}, {row[1] or 'no application name'}, from {row[2] or 'local'}"
    )


def read_history(conn: psycopg.Connection) -> list[AppliedMigration]:
    """The history table's rows in version order (none when the table does not exist yet)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HISTORY_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        f"SELECT version, name, checksum, applied_at, duration_ms FROM {HISTORY_TABLE} ORDER BY version"
    ).fetchall()
    return [AppliedMigration(*row) for row in rows]
