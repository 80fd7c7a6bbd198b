"""Backups: age of the last verified base backup and lag of the continuous WAL archive (recovery point).

Read over the ordinary database connection, so the probe needs neither the Docker engine nor the archive:
the backup sidecar records every base backup that passed pg_verifybackup in ``ops.base_backups``
(migration 0011), and the replication slot it streams through tells how far behind the server the archive is
(``pg_replication_slots.restart_lsn`` follows the receiver's flush position). An inactive slot means nothing is
being archived: every write since is at risk, and the server keeps WAL for the slot until its disk fills
(bounded by max_slot_wal_keep_size). Thresholds: docs/runbook.md, "Backups".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from healthchecks.context import ProbeContext
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

SLOT = "kaizenity_archive"  # infra.services.backup.SLOT (not imported: a health run must not import infra)
SLOT_SQL = """SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
FROM pg_replication_slots WHERE slot_name = %s"""
LAST_BASE_SQL = "SELECT max(finished_at) FROM ops.base_backups WHERE verified"
RUNBOOK = "docs/runbook.md#backups"


@dataclass(frozen=True)
class BackupsTarget:
    """The database the sidecar archives, and what counts as too old or too far behind."""

    dsn: str
    base_age_warning_hours: float = 26.0  # a daily schedule plus two hours of slack
    base_age_critical_hours: float = 50.0  # two scheduled backups missed
    lag_warning_bytes: float = 64 * 1024 * 1024
    lag_critical_bytes: float = 1024 * 1024 * 1024


def probe(target: BackupsTarget, ctx: ProbeContext) -> ProbeResult:
    builder = ResultBuilder("backups")
    try:
        with psycopg.connect(
            target.dsn,
            connect_timeout=max(2, int(ctx.remaining())),
            autocommit=True,
            application_name="kaizenity-health",
        ) as conn:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(ctx.remaining() * 1000)}ms"])
            _check_streaming(conn, target, builder)
            _check_base_age(conn, target, ctx, builder)
    except psycopg.Error as exc:
        Problem(
            "connect", Status.UNKNOWN, f"backups not checked: {ctx.redactor.exception(exc)}", "See the database probe."
        ).record(builder)
    return builder.build()


def _check_streaming(conn: psycopg.Connection[Any], target: BackupsTarget, builder: ResultBuilder) -> None:
    row = conn.execute(SLOT_SQL, [SLOT]).fetchone()
    fix = (
        f"The backup sidecar is not streaming WAL: `docker logs <prefix>-backup`, then `kaizenity backup status` "
        f"({RUNBOOK})."
    )
    if row is None:
        builder.add("wal_archive", Status.CRITICAL, f"no replication slot {SLOT}: WAL is not being archived", fix)
        return
    active, lag = bool(row[0]), int(row[1] or 0)
    builder.measure(
        Measurement("wal_archive_lag", lag, Unit.BYTES, target.lag_warning_bytes, target.lag_critical_bytes, 0)
    )
    if not active:
        builder.add("wal_archive", Status.CRITICAL, f"WAL archiving stopped ({lag} bytes not archived)", fix)
    elif lag >= target.lag_critical_bytes:
        builder.add("wal_archive", Status.CRITICAL, f"WAL archive {lag} bytes behind", fix)
    elif lag >= target.lag_warning_bytes:
        builder.add("wal_archive", Status.WARNING, f"WAL archive {lag} bytes behind", fix)
    else:
        builder.add("wal_archive", Status.OK, f"WAL streaming, {lag} bytes behind")


def _check_base_age(
    conn: psycopg.Connection[Any], target: BackupsTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    try:
        row = conn.execute(LAST_BASE_SQL).fetchone()
    except psycopg.errors.UndefinedTable:
        builder.add(
            "base_backup", Status.UNKNOWN, "ops.base_backups missing", "Apply the schema: `kaizenity db apply`."
        )
        return
    last: datetime | None = row[0] if row else None
    fix = f"Scheduled base backups fail or stopped: `docker logs <prefix>-backup`, then `kaizenity backup` ({RUNBOOK})."
    if last is None:
        builder.add("base_backup", Status.CRITICAL, "no verified base backup yet", fix)
        return
    hours = (ctx.now() - last).total_seconds() / 3600
    builder.measure(
        Measurement(
            "base_backup_age", round(hours * 3600), Unit.SECONDS,
            target.base_age_warning_hours * 3600, target.base_age_critical_hours * 3600, 0,
        )
    )  # fmt: skip
    status = (
        Status.CRITICAL
        if hours >= target.base_age_critical_hours
        else Status.WARNING
        if hours >= target.base_age_warning_hours
        else Status.OK
    )
    builder.add("base_backup", status, f"last verified base backup {hours:.1f} h old", fix)
