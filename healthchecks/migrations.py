"""The schema check's interface: a callable that says how many migrations are pending or drifted.

The migration runner (``bootstrap.runner``) owns the history table and checksums; the health probe must
not re-implement them. It only needs counts, so this module defines that small contract and adapts the
runner to it when the runner is installed. When it is not, the schema is reported as NOT CHECKED
(UNKNOWN), never as OK.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MigrationState:
    """Pending = files not yet applied; drifted = applied files whose checksum no longer matches."""

    pending: int
    drifted: int
    latest: str | None = None


MigrationStatusFn = Callable[[Any], MigrationState]  # called with an open psycopg connection


def default_status_fn() -> MigrationStatusFn | None:
    """An adapter to ``bootstrap.runner`` if it is installed and exposes a status function, else None."""
    try:
        runner = importlib.import_module("bootstrap.runner")
    except ImportError:
        return None
    status = getattr(runner, "migration_state", None) or getattr(runner, "status", None)
    if not callable(status):
        return None

    def adapted(conn: Any) -> MigrationState:
        return _to_state(status(conn))

    return adapted


def _to_state(value: Any) -> MigrationState:
    """Accept the runner's own status object as long as it carries pending and drifted information."""
    if isinstance(value, MigrationState):
        return value
    pending = _count(getattr(value, "pending", None))
    drifted = _count(getattr(value, "drifted", None))
    latest = getattr(value, "latest", None) or getattr(value, "current", None)
    return MigrationState(pending, drifted, str(latest) if latest is not None else None)


def _count(value: Any) -> int:
    if isinstance(value, int):
        return value
    if value is None:
        raise TypeError("the migration runner's status has no pending/drifted information")
    return len(value)
