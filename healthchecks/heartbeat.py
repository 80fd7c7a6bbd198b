"""Where the n8n heartbeat is read from: ``ops.heartbeats(source text, beat_at timestamptz)``.

The heartbeat workflow inserts a row on a schedule; its age is the end-to-end proof that n8n executes
workflows (``/healthz`` answers 200 even when nothing runs). The table and query are isolated here so a
change of the table's shape touches one module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

HEARTBEAT_QUERY = "SELECT max(beat_at) FROM ops.heartbeats WHERE %(source)s::text IS NULL OR source = %(source)s"

HeartbeatSource = Callable[[float], datetime | None]  # called with the seconds left of the probe's budget


def sql_heartbeat(dsn: str, source: str | None = None) -> HeartbeatSource:
    """A heartbeat source reading the latest ``beat_at`` (of ``source``, or of any) from ``dsn``.

    Returns None when no heartbeat was ever written. Connection and statement are bounded by the budget
    the caller passes, so a paused database costs the probe's timeout, not libpq's default of forever.
    """

    def latest(budget: float) -> datetime | None:
        import psycopg

        timeout_ms = max(100, int(budget * 1000))
        with psycopg.connect(dsn, connect_timeout=max(1, int(budget)), autocommit=True) as conn:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{timeout_ms}ms"])
            row = conn.execute(HEARTBEAT_QUERY, {"source": source}).fetchone()
        value = row[0] if row else None
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"ops.heartbeats.beat_at must be a timestamp, got {type(value).__name__}")
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return latest
