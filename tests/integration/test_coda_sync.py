"""Coda <-> PostgreSQL on the real stack (n8n 2.8.4, PostgreSQL, the seeded workflows) against the contract fake.

n8n's container reaches the fake on the environment network's gateway address (as test_workflows.py does for the
fake Bot API): the fake binds there, not on 0.0.0.0.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import psycopg
import pytest

from healthchecks import coda
from healthchecks.context import ProbeContext
from healthchecks.redaction import Redactor
from healthchecks.result import Status
from infra.local_endpoints import LocalEndpoints
from tests.fakes.coda import CodaFake
from tests.integration.test_workflows import managed, query, reseed
from tests.integration.waiting import wait_until
from workflows.n8n_api import PublicApi

pytestmark = pytest.mark.integration

DOC = "AbCDeFGH"
GRID = "grid-leads"
COLUMNS = {"c-name": "Name", "c-score": "Score", "c-tags": "Tags"}
SCOPED_TOKEN = "coda-table-scoped-token-1234"
ROWS = (
    "SELECT coda_row_id, attributes, deleted_at IS NOT NULL FROM client.entities WHERE entity_type_id = %s ORDER BY 1"
)


@pytest.fixture
def api(kaizenity_stack: LocalEndpoints, n8n_api_key: str) -> Iterator[PublicApi]:
    assert kaizenity_stack.n8n_url
    client = PublicApi(kaizenity_stack.n8n_url, n8n_api_key)
    yield client
    client.close()


@pytest.fixture
def entity_type(kaizenity_stack: LocalEndpoints) -> Iterator[str]:
    """A tenant, its space bound to the Coda doc, and an entity type bound to Coda table grid-leads."""
    (tenant,) = query(
        kaizenity_stack, "INSERT INTO core.tenants (slug, name) VALUES ('coda-two-way', 'Coda Co') RETURNING id"
    )[0]
    (space,) = query(
        kaizenity_stack,
        "INSERT INTO client.spaces (tenant_id, name, coda_doc_id) VALUES (%s, 'CRM', %s) RETURNING id",
        tenant,
        DOC,
    )[0]
    (type_id,) = query(
        kaizenity_stack,
        "INSERT INTO client.entity_types (tenant_id, space_id, name, coda_table_id) VALUES (%s, %s, 'lead', %s) "
        "RETURNING id",
        tenant,
        space,
        GRID,
    )[0]
    yield str(type_id)
    assert kaizenity_stack.database_url
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM core.tenants WHERE id = %s", (tenant,))
        conn.execute("DELETE FROM ops.sync_cursors WHERE source = 'coda' AND scope = %s", (f"{DOC}/{GRID}",))


@pytest.fixture
def fake_coda(kaizenity_stack: LocalEndpoints) -> Iterator[CodaFake]:
    network = docker.from_env().networks.get(kaizenity_stack.network)
    with CodaFake("doc-wide-token-not-used", doc_id=DOC, host=network.attrs["IPAM"]["Config"][0]["Gateway"]) as fake:
        fake.add_grid(GRID, "Leads", COLUMNS)
        fake.scoped_tokens[SCOPED_TOKEN] = {GRID}
        yield fake


def sync_on(stack: LocalEndpoints, api: PublicApi, fake: CodaFake, **extra: str) -> str:
    values = {
        "codaApiBaseUrl": fake.base_url, "codaDocId": DOC, "codaAuthorization": f"Bearer {SCOPED_TOKEN}",
        "codaSyncUnit": "seconds", "codaSyncEvery": "2", **extra,
    }  # fmt: skip
    reseed(stack, values)
    workflow_id = str(managed(api)["Kaizenity: Coda sync"]["id"])
    api.set_active(workflow_id, True)
    return workflow_id


def rows_of(stack: LocalEndpoints, type_id: str) -> dict[str, tuple[dict[str, Any], bool]]:
    return {row_id: (attributes, deleted) for row_id, attributes, deleted in query(stack, ROWS, type_id)}


def test_rows_added_edited_renamed_and_deleted_in_coda_reach_postgres_through_a_429(
    kaizenity_stack: LocalEndpoints, api: PublicApi, fake_coda: CodaFake, entity_type: str
) -> None:
    ids = [fake_coda.add_row(GRID, {"c-name": f"Lead {n}", "c-score": n, "c-tags": ["new", f"t{n}"]}) for n in range(5)]
    fake_coda.rate_limit_pages = {2}  # the second page answers 429 once, without Retry-After
    workflow_id = sync_on(kaizenity_stack, api, fake_coda, codaFullSyncSeconds="8")
    try:
        synced = wait_until(lambda: len(rows := rows_of(kaizenity_stack, entity_type)) == 5 and rows, 120, "5 rows")
        assert synced[ids[2]] == ({"c-name": "Lead 2", "c-score": 2, "c-tags": ["new", "t2"]}, False)
        (labels,) = query(kaizenity_stack, "SELECT coda_columns FROM client.entity_types WHERE id = %s", entity_type)[0]
        assert labels == COLUMNS

        throttled = [r for r in fake_coda.throttled if r.path.endswith("/rows")]
        assert len(throttled) == 1
        token = throttled[0].query["pageToken"]
        asked = [r for r in fake_coda.requests if r.path.endswith("/rows") and r.query.get("pageToken") == token]
        assert len(asked) == 2, "the page that failed was asked again, once"
        full_starts = [
            r for r in fake_coda.requests
            if r.path.endswith("/rows") and not r.query.get("pageToken") and not r.query.get("syncToken")
        ]  # fmt: skip
        assert len(full_starts) == 1, "paging resumed at the page that failed, not from the first page"
        retry_gap = _gap(fake_coda, throttled[0], asked)
        assert retry_gap >= 2.9, f"no Retry-After: backed off {retry_gap:.1f} s, within Coda's 6 s window"

        added = fake_coda.add_row(GRID, {"c-name": "Lead 5", "c-score": 5, "c-tags": []})
        fake_coda.edit_row(GRID, ids[0], {"c-score": 100})
        fake_coda.rename_column(GRID, "c-score", "Points")
        wait_until(lambda: added in rows_of(kaizenity_stack, entity_type), 30, "the added row")
        wait_until(lambda: rows_of(kaizenity_stack, entity_type)[ids[0]][0]["c-score"] == 100, 30, "the edit")
        fake_coda.delete_row(GRID, ids[1])
        wait_until(lambda: rows_of(kaizenity_stack, entity_type)[ids[1]][1], 90, "the deletion flagged")
        wait_until(
            lambda: query(kaizenity_stack, "SELECT coda_columns ->> 'c-score' FROM client.entity_types WHERE id = %s",
                          entity_type)[0][0] == "Points",
            90,
            "the renamed column's label",
        )  # fmt: skip

        final = rows_of(kaizenity_stack, entity_type)
        assert len(final) == 6, "no duplicates: one entity per Coda row"
        assert [row_id for row_id, (_, deleted) in final.items() if deleted] == [ids[1]]
        assert final[ids[3]] == ({"c-name": "Lead 3", "c-score": 3, "c-tags": ["new", "t3"]}, False), (
            "renaming a column changes no stored key"
        )
        assert all("Points" not in attributes and "Score" not in attributes for attributes, _ in final.values())
        assert all(r.headers["authorization"] == f"Bearer {SCOPED_TOKEN}" for r in fake_coda.requests)
        assert not [r for r in fake_coda.requests if r.path.rstrip("/").endswith(DOC)], "no doc-level call needed"
    finally:
        api.set_active(workflow_id, False)
        reseed(kaizenity_stack)


def _gap(fake: CodaFake, throttled: Any, asked: list[Any]) -> float:
    """Seconds between the 429 and the retry of the same page (from the fake's receive times)."""
    times = fake.received_at
    retry = next(r for r in asked if r is not throttled)
    return times[id(retry)] - times[id(throttled)]


def test_the_probe_is_ok_with_the_same_table_scoped_token(fake_coda: CodaFake) -> None:
    fake_coda.add_row(GRID, {"c-name": "Ada"})
    target = coda.CodaTarget(SCOPED_TOKEN, DOC, fake_coda.base_url, (GRID,))
    result = coda.probe(target, ProbeContext(timeout=5, retries=1, backoff=0.05, redactor=Redactor([SCOPED_TOKEN])))
    assert result.status is Status.OK, result
    assert any("table-scoped token" in check.text for check in result.checks)


def test_sync_state_survives_a_run_that_stops_midway(kaizenity_stack: LocalEndpoints, entity_type: str) -> None:
    """The SQL side alone: a page's rows and the next page token commit together, so a restart resumes there."""
    assert kaizenity_stack.database_url
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute("SET ROLE kaizenity_app")
        step = conn.execute("SELECT client.coda_sync_next('run-a', 3600)").fetchone()
        assert step
        assert step[0]["action"] == "columns"
        conn.execute("SELECT client.coda_sync_columns('run-a', '{\"items\": []}')")
        page = '{"items": [{"id": "i-1", "values": {"c-name": "```Ada```"}}], "nextPageToken": "p2"}'
        conn.execute("SELECT client.coda_sync_page('run-a', %s::jsonb)", (page,))
        # run-a dies here; its lease expires (forced below) and run-b resumes at page p2
        conn.execute("RESET ROLE")
        conn.execute(
            'UPDATE ops.sync_cursors SET cursor = (cursor::jsonb || \'{"lease_until": "2000-01-01T00:00:00Z"}\')::text'
            " WHERE source = 'coda' AND scope = %s",
            (f"{DOC}/{GRID}",),
        )
        conn.execute("SET ROLE kaizenity_app")
        resumed = conn.execute("SELECT client.coda_sync_next('run-b', 3600)").fetchone()
        assert resumed
        assert resumed[0]["query"] == {"pageToken": "p2"}
        conn.execute("RESET ROLE")
    assert rows_of(kaizenity_stack, entity_type) == {"i-1": ({"c-name": "Ada"}, False)}


PUSH_COLUMNS = {
    "grid-kzNotifications": ("Notifications", ["c-kzNotifId", "c-kzChannel", "c-kzRecipient", "c-kzStatus",
                                               "c-kzAttempts", "c-kzError", "c-kzSentAt", "c-kzChangedAt", "c-kzNote"]),
    "grid-kzInbound": ("Inbound", ["c-kzMsgKey", "c-kzSpace", "c-kzChannel", "c-kzChat", "c-kzBody", "c-kzReceived"]),
    "grid-kzDaily": ("Daily", ["c-kzAggKey", "c-kzDay", "c-kzName", "c-kzEvents"]),
}  # fmt: skip


def test_status_changes_in_postgres_reach_coda_once_through_a_429_and_postgres_wins_its_columns(
    kaizenity_stack: LocalEndpoints, api: PublicApi, fake_coda: CodaFake
) -> None:
    for grid_id, (name, columns) in PUSH_COLUMNS.items():
        fake_coda.add_grid(grid_id, name, {c: c.removeprefix("c-kz") for c in columns})
        fake_coda.scoped_tokens[SCOPED_TOKEN].add(grid_id)
    fake_coda.write_limit = (1, 6.0)  # a second write within 6 s is answered 429 (no Retry-After)
    notifications = "INSERT INTO ops.notifications (channel, recipient, body) VALUES ('slack', %s, 'x') RETURNING id"
    first = query(kaizenity_stack, notifications, "C-one")[0][0]
    second = query(kaizenity_stack, notifications, "C-two")[0][0]
    reseed(kaizenity_stack, {"codaApiBaseUrl": fake_coda.base_url, "codaDocId": DOC,
                             "codaAuthorization": f"Bearer {SCOPED_TOKEN}", "codaSyncUnit": "seconds",
                             "codaSyncEvery": "2"})  # fmt: skip
    workflow_id = str(managed(api)["Kaizenity: Coda push"]["id"])
    api.set_active(workflow_id, True)
    grid = "grid-kzNotifications"

    def status_of(notification: int) -> list[Any]:
        rows = fake_coda.plain_rows(grid).values()
        return [r.get("Status") for r in rows if r.get("NotifId") == notification]

    try:
        wait_until(lambda: status_of(first) == ["pending"] and status_of(second) == ["pending"], 120, "rows in Coda")
        row_id = next(i for i, r in fake_coda.plain_rows(grid).items() if r.get("NotifId") == first)
        fake_coda.edit_row(grid, row_id, {"c-kzNote": "call back", "c-kzStatus": "edited in Coda"})
        query(kaizenity_stack, "UPDATE ops.notifications SET status = 'sent' WHERE id = %s RETURNING id", first)
        wait_until(lambda: status_of(first) == ["sent"], 60, "the status change in Coda")
        row = fake_coda.plain_rows(grid)[row_id]
        assert row["Note"] == "call back", "a column the platform does not own is never written"
        assert status_of(second) == ["pending"], "one row per key: nothing duplicated"
        assert any(r.method == "POST" for r in fake_coda.throttled), "a write was rate-limited on the way"
        wait_until(
            lambda: not query(kaizenity_stack, "SELECT 1 FROM ops.coda_outbox WHERE push_table = 'notifications' "
                                               "AND row_key IN (%s, %s)", str(first), str(second)),
            30,
            "the outbox emptied once Coda completed the mutations",
        )  # fmt: skip
        statuses = [r for r in fake_coda.requests if r.path.startswith("/apis/v1/mutationStatus/")]
        assert statuses, "mutations were confirmed through GET /mutationStatus/{requestId}"
    finally:
        api.set_active(workflow_id, False)
        reseed(kaizenity_stack)
        query(kaizenity_stack, "DELETE FROM ops.notifications WHERE id IN (%s, %s) RETURNING id", first, second)
