"""The schema check's interface: how many migrations are pending or drifted, from the migration runner.

The runner (``bootstrap.runner``) owns the history table and the checksums; the probe does not re-implement
them, it reads the runner's plan (the same one `kaizenity db status` prints) on the probe's own connection.
"""

from __future__ import annotations

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


def runner_state(conn: Any) -> MigrationState:
    """The runner's plan for this database, as counts."""
    from bootstrap.catalog import load_migrations
    from bootstrap.runner import read_plan

    plan = read_plan(conn, load_migrations())
    latest = max((f"{row.version:04d}_{row.name}" for row in plan.applied), default=None)
    return MigrationState(pending=len(plan.pending), drifted=len(plan.drift), latest=latest)


def default_status_fn() -> MigrationStatusFn | None:
    """The runner's status; kept as a function so tests can substitute a state."""
    return runner_state
