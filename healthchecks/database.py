"""PostgreSQL: reachable, schema at the latest migration, connections, long transactions, size.

Each measurement runs under a statement timeout derived from the probe's remaining budget, so a locked
catalog cannot hang the check. The schema verdict comes from the migration runner through
:mod:`healthchecks.migrations`; without it the schema is UNKNOWN ("not checked"), never assumed fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from healthchecks.context import ProbeContext
from healthchecks.migrations import DEFAULT_DIR, migration_state
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

_SIZE_FIX = "Find the big tables (pg_total_relation_size), prune n8n execution data (EXECUTIONS_DATA_PRUNE)."


@dataclass(frozen=True)
class DatabaseTarget:
    """The ops database and the thresholds that define trouble."""

    dsn: str
    connections_warning_percent: float = 80.0
    connections_critical_percent: float = 95.0
    long_transaction_warning_seconds: float = 300.0
    long_transaction_critical_seconds: float = 1800.0
    size_warning_bytes: float | None = None
    size_critical_bytes: float | None = None
    migrations_dir: Path = DEFAULT_DIR


def probe(target: DatabaseTarget, ctx: ProbeContext) -> ProbeResult:
    """Connect + SELECT 1, then every other check on the same connection."""
    builder = ResultBuilder("database")
    try:
        with _connect(target, ctx) as conn:
            _check_select_one(conn, ctx, builder)
            for check in (_check_schema, _check_connections, _check_long_transactions, _check_size):
                try:
                    check(conn, target, ctx, builder)
                except psycopg.Error as exc:
                    builder.add(check.__name__[7:], Status.UNKNOWN, f"not checked: {ctx.redactor.exception(exc)}")
    except Problem as problem:
        problem.record(builder)
    return builder.build()


def _connect(target: DatabaseTarget, ctx: ProbeContext) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(
            target.dsn,
            connect_timeout=max(2, int(ctx.remaining())),
            autocommit=True,
            application_name="kaizenity-health",
        )
        conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(ctx.remaining() * 1000)}ms"])
    except psycopg.Error as exc:
        raise _connect_problem(ctx.redactor.exception(exc)) from None
    return conn


def _connect_problem(reason: str) -> Problem:
    lowered = reason.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        fix = "The password in KAIZENITY_DATABASE_URL does not match the role: fix it or reset the role's password."
    elif "does not exist" in lowered:
        fix = "The database or role in KAIZENITY_DATABASE_URL does not exist: check the name (bootstrap creates it)."
    else:
        fix = (
            "PostgreSQL is down or unreachable: `docker ps` / `docker logs` the postgres container (disk full? "
            "crash?), check the host and port in KAIZENITY_DATABASE_URL. n8n stops working without it."
        )
    return Problem("connect", Status.CRITICAL, f"cannot connect to PostgreSQL ({reason})", fix)


def _check_select_one(conn: psycopg.Connection[Any], ctx: ProbeContext, builder: ResultBuilder) -> None:
    started = ctx.elapsed()
    conn.execute("SELECT 1").fetchone()
    builder.measure(Measurement("latency", round(ctx.elapsed() - started, 4), Unit.SECONDS, minimum=0))
    builder.add("connect", Status.OK, "SELECT 1 ok")


def _scalar(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


def _check_schema(
    conn: psycopg.Connection[Any], target: DatabaseTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    try:
        state = migration_state(conn, target.migrations_dir)
    except (psycopg.Error, OSError) as exc:
        builder.add(
            "schema",
            Status.UNKNOWN,
            f"schema not checked: {ctx.redactor.exception(exc)}",
            "Check by hand with `kaizenity db status`; database.migrations_dir must point at bootstrap/migrations.",
        )
        return
    builder.measure(Measurement("migrations_pending", len(state.pending), Unit.COUNT, critical=0.5, minimum=0))
    builder.measure(Measurement("migrations_drifted", len(state.drifted), Unit.COUNT, critical=0.5, minimum=0))
    if state.drifted:
        builder.add(
            "schema",
            Status.CRITICAL,
            f"applied migration(s) changed since they ran (checksum drift): {', '.join(state.drifted)}",
            "Someone edited an applied migration file: restore it from git (`kaizenity db verify` names it); "
            "never edit applied migrations, add a new one.",
        )
    if state.pending:
        builder.add(
            "schema",
            Status.CRITICAL,
            f"schema behind: {len(state.pending)} migration(s) pending ({', '.join(state.pending[:3])})",
            "Run `kaizenity db apply` (it takes an advisory lock; safe to re-run).",
        )
    if state.ahead:
        builder.add(
            "schema",
            Status.WARNING,
            f"database has migration(s) this build does not know: {', '.join(state.ahead)}",
            "A newer release migrated this database: run the health check from that release, or roll forward.",
        )
    if not (state.pending or state.drifted or state.ahead):
        builder.add("schema", Status.OK, f"schema at latest migration {state.latest or ''}".rstrip())


def _check_connections(
    conn: psycopg.Connection[Any], target: DatabaseTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    used = int(_scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
    limit = int(_scalar(conn, "SELECT current_setting('max_connections')::int"))
    percent = 100.0 * used / limit if limit else 0.0
    warn, crit = target.connections_warning_percent, target.connections_critical_percent
    builder.measure(Measurement("connections_used", used, Unit.COUNT, limit * warn / 100, limit * crit / 100, 0, limit))
    builder.measure(Measurement("connections_used_percent", round(percent, 1), Unit.PERCENT, warn, crit, 0, 100))
    status = Status.CRITICAL if percent >= crit else Status.WARNING if percent >= warn else Status.OK
    builder.add(
        "connections",
        status,
        f"{used}/{limit} connections used ({percent:.0f}%)",
        "Find who holds them: SELECT usename, application_name, state, count(*) FROM pg_stat_activity GROUP BY "
        "1,2,3; a leak in a workflow or too many queue workers; raise max_connections only as a last resort.",
    )


def _check_long_transactions(
    conn: psycopg.Connection[Any], target: DatabaseTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE now() - xact_start > make_interval(secs => %s)),"
        " coalesce(max(extract(epoch FROM now() - xact_start)), 0)"
        " FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'",
        [target.long_transaction_warning_seconds],
    ).fetchone()
    count, longest = (int(row[0]), float(row[1])) if row else (0, 0.0)
    warn, crit = target.long_transaction_warning_seconds, target.long_transaction_critical_seconds
    builder.measure(Measurement("longest_transaction", round(longest, 1), Unit.SECONDS, warn, crit, 0))
    builder.measure(Measurement("long_transactions", count, Unit.COUNT, minimum=0))
    status = Status.CRITICAL if longest >= crit else Status.WARNING if longest >= warn else Status.OK
    builder.add(
        "transactions",
        status,
        f"longest open transaction {longest:.0f} s ({count} over {warn:g} s)",
        "Long transactions block vacuum and hold locks: SELECT pid, usename, state, now()-xact_start, query FROM "
        "pg_stat_activity ORDER BY xact_start; end a stuck one with pg_terminate_backend(pid).",
    )


def _check_size(
    conn: psycopg.Connection[Any], target: DatabaseTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    size = float(_scalar(conn, "SELECT pg_database_size(current_database())"))
    warn, crit = target.size_warning_bytes, target.size_critical_bytes
    builder.measure(Measurement("size", size, Unit.BYTES, warn, crit, 0))
    status = Status.OK
    if crit is not None and size >= crit:
        status = Status.CRITICAL
    elif warn is not None and size >= warn:
        status = Status.WARNING
    builder.add("size", status, f"database size {size / 2**20:.0f} MiB", _SIZE_FIX)
