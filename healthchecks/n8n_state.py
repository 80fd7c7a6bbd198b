"""n8n's workflow and execution state, read from n8n's own database by a read-only login.

`kaizenity health` used to read these through n8n's public API with the seeder's API key; on n8n's community
edition that key is the owner's, unscoped and long-lived (docs/security.md). The probe now reads the few columns
it needs straight from n8n's tables, as the read-only login `kaizenity_n8n_reader` (infra/n8n_reader.py), which
the seeder grants exactly these columns once n8n has created its tables:

- ``workflow_entity (id, name, "activeVersionId", "isArchived")``: n8n 2.x publishes a workflow by setting
  ``activeVersionId``; the public API's ``active=true`` filter is ``"activeVersionId" IS NOT NULL``
  (n8n 2.8.4 dist/public-api/v1/handlers/workflows/workflows.handler.js), so that is the truth read here.
  An archived workflow (n8n 2.x "delete" in the editor) does not run: it counts as missing.
- ``execution_entity (id, "workflowId", status, "startedAt", "deletedAt")``: the public API's ``status=error``
  is ``status IN ('error', 'crashed')`` of executions not soft-deleted (@n8n/db execution.repository.js
  getStatusCondition).

Never execution data or credentials: the login has no privilege on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

WORKFLOWS_QUERY = 'SELECT name, "activeVersionId" IS NOT NULL FROM workflow_entity WHERE NOT "isArchived"'
FAILED_QUERY = (
    'SELECT "workflowId", "startedAt" FROM execution_entity '
    "WHERE status IN ('error', 'crashed') AND \"deletedAt\" IS NULL "
    'AND ("startedAt" IS NULL OR "startedAt" >= %(since)s) ORDER BY id DESC LIMIT 10000'
)
# The columns the reader login is granted (infra/n8n_reader.py grants them; the queries above use no others).
READER_COLUMNS = {
    "workflow_entity": ("id", "name", "activeVersionId", "isArchived"),
    "execution_entity": ("id", "workflowId", "status", "startedAt", "deletedAt"),
}


@dataclass(frozen=True)
class Workflow:
    name: str
    active: bool


@dataclass(frozen=True)
class FailedExecution:
    workflow_id: str
    started_at: datetime | None


class N8nStateSource:
    """Reads of n8n's state; each call gets the seconds left of the probe's budget."""

    def workflows(self, budget: float) -> list[Workflow]:
        raise NotImplementedError

    def failed_executions(self, since: datetime, budget: float) -> list[FailedExecution]:
        raise NotImplementedError


class SqlN8nState(N8nStateSource):
    """The real source: one short read-only connection per call, bounded by the probe's budget."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def _rows(self, query: str, params: dict[str, object], budget: float) -> list[tuple[object, ...]]:
        import psycopg

        timeout_ms = max(100, int(budget * 1000))
        with psycopg.connect(self._dsn, connect_timeout=max(1, int(budget)), autocommit=True) as conn:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{timeout_ms}ms"])
            conn.execute("SET default_transaction_read_only = on")
            return list(conn.execute(query, params).fetchall())

    def workflows(self, budget: float) -> list[Workflow]:
        return [Workflow(str(name), bool(active)) for name, active in self._rows(WORKFLOWS_QUERY, {}, budget)]

    def failed_executions(self, since: datetime, budget: float) -> list[FailedExecution]:
        rows = self._rows(FAILED_QUERY, {"since": since}, budget)
        return [FailedExecution(str(workflow), _aware(started)) for workflow, started in rows]


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


N8nStateFactory = Callable[[str], N8nStateSource]
