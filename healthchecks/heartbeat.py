"""Where the n8n heartbeat is read from: a configurable SQL query on the ops database.

The heartbeat table (``ops.heartbeats``) is owned by the migrations; its column names may change, so the
query is a setting (``n8n.heartbeat_query``), and it must return one timestamp: the latest heartbeat.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

DEFAULT_QUERY = "SELECT max(beat_at) FROM ops.heartbeats"


def sql_heartbeat(dsn: str, query: str = DEFAULT_QUERY, timeout: float = 5.0) -> Callable[[], datetime | None]:
    """A heartbeat source running ``query`` on ``dsn``; returns None when no heartbeat was ever written."""

    def latest() -> datetime | None:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=max(2, int(timeout)), autocommit=True) as conn:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(timeout * 1000)}ms"])
            row = conn.execute(query).fetchone()
        value = row[0] if row else None
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"n8n.heartbeat_query must return a timestamp, got {type(value).__name__}")
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return latest
