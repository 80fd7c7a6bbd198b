"""The Coda fake keeps the published contract the sync relies on (see tests/fakes/coda.py for each rule's source)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.coda import CodaFake
from workflows.definitions import load_parameters

TOKEN = "coda-doc-token-0001"
SCOPED = "coda-scoped-token-0002"


@pytest.fixture
def fake() -> Iterator[CodaFake]:
    with CodaFake(TOKEN) as coda:
        coda.add_grid("grid-a", "A", {"c-name": "Name", "c-tags": "Tags"})
        coda.scoped_tokens[SCOPED] = {"grid-a"}
        yield coda


def client(fake: CodaFake, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {token}"})


def test_pages_then_a_sync_token_that_returns_only_changes_and_no_tombstones(fake: CodaFake) -> None:
    ids = [fake.add_row("grid-a", {"c-name": f"n{n}", "c-tags": ["x", "y"]}) for n in range(3)]
    with client(fake) as http:
        first = http.get("/docs/AbCDeFGH/tables/grid-a/rows", params={"valueFormat": "rich", "limit": 50}).json()
        assert [r["id"] for r in first["items"]] == ids[:2], "the server's own page size wins over limit"
        assert first["items"][0]["values"] == {"c-name": "```n0```", "c-tags": ["```x```", "```y```"]}
        last = http.get("/docs/AbCDeFGH/tables/grid-a/rows", params={"pageToken": first["nextPageToken"]}).json()
        assert [r["id"] for r in last["items"]] == ids[2:]
        assert "nextPageToken" not in last
        fake.edit_row("grid-a", ids[1], {"c-name": "changed"})
        fake.delete_row("grid-a", ids[0])
        changes = http.get("/docs/AbCDeFGH/tables/grid-a/rows", params={"syncToken": last["nextSyncToken"]}).json()
        assert [r["id"] for r in changes["items"]] == [ids[1]], "the deleted row is simply absent"
        names = http.get("/docs/AbCDeFGH/tables/grid-a/rows", params={"useColumnNames": "true"}).json()
        assert names["items"][0]["values"] == {"Name": "changed", "Tags": "x,y"}


def test_429_without_retry_after_and_the_read_window(fake: CodaFake) -> None:
    fake.read_limit = (2, 6.0)
    with client(fake) as http:
        assert http.get("/whoami").status_code == 200
        assert http.get("/whoami").status_code == 200
        limited = http.get("/whoami")
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert limited.json()["statusCode"] == 429


def test_upsert_is_queued_then_completed_and_matches_key_columns(fake: CodaFake) -> None:
    fake.add_row("grid-a", {"c-name": "k1", "c-tags": []})
    body = {"rows": [{"cells": [{"column": "c-name", "value": "k1"}, {"column": "Tags", "value": ["z"]}]}],
            "keyColumns": ["c-name"]}  # fmt: skip
    with client(fake) as http:
        queued = http.post("/docs/AbCDeFGH/tables/grid-a/rows", json=body)
        assert queued.status_code == 202
        request_id = queued.json()["requestId"]
        assert http.get(f"/mutationStatus/{request_id}").json() == {"completed": False}
        time.sleep(fake.mutation_delay + 0.1)
        assert http.get(f"/mutationStatus/{request_id}").json() == {"completed": True}
    assert list(fake.plain_rows("grid-a").values()) == [{"Name": "k1", "Tags": ["z"]}], "updated, not inserted"


def test_table_scoped_token_reads_its_table_but_not_the_doc(fake: CodaFake) -> None:
    fake.add_grid("grid-b", "B", {"c-x": "X"})
    with client(fake, SCOPED) as http:
        assert http.get("/whoami").json()["scoped"] is True
        assert http.get("/docs/AbCDeFGH").status_code == 403
        assert http.get("/docs/AbCDeFGH/tables").status_code == 403
        assert http.get("/docs/AbCDeFGH/tables/grid-a/rows").status_code == 200
        assert http.get("/docs/AbCDeFGH/tables/grid-a/columns").status_code == 200
        assert http.get("/docs/AbCDeFGH/tables/grid-b/rows").status_code == 403


def test_the_push_mapping_parameter_defaults_to_the_mapping_file_as_json() -> None:
    value = load_parameters()["codaTables"].default
    assert value is not None
    assert '"keyColumns"' not in value
    assert '"notifications":{"columns":' in value
