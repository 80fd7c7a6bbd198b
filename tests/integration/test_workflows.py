"""The seed workflows in a real n8n, on the real PostgreSQL, through the real gateway.

The session environment was seeded when it came up (with fast schedules: see `addopts` in pyproject.toml).
"""

from __future__ import annotations

import json
import shutil
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import psycopg
import pytest

from infra.local_endpoints import LocalEndpoints
from infra.local_seeding import seed_values_for
from tests.fakes.telegram_bot_api import FakeTelegram
from tests.integration.waiting import wait_until
from workflows.definitions import DEFINITIONS_DIR, MANAGED_PREFIX
from workflows.deploy import N8nAccess, deploy_workflows
from workflows.n8n_api import PublicApi
from workflows.seed import SeedReport
from workflows.validate import WorkflowValidationError

pytestmark = pytest.mark.integration

FAST = {"heartbeatUnit": "seconds", "heartbeatEvery": "2", "dispatchSeconds": "2", "notificationRetryBaseSeconds": "1"}


def reseed(stack: LocalEndpoints, extra: dict[str, str] | None = None, directory: Path = DEFINITIONS_DIR) -> SeedReport:
    values = seed_values_for(stack, "kaizenity", {**FAST, **(extra or {})})
    assert stack.n8n_url
    access = N8nAccess(stack.n8n_url, stack.secrets["n8nOwnerPassword"])
    report = deploy_workflows(
        access, values, known_fingerprints=stack.credential_fingerprints, definitions_dir=directory
    )
    stack.credential_fingerprints = report.credential_fingerprints
    return report


@pytest.fixture
def api(kaizenity_stack: LocalEndpoints, n8n_api_key: str) -> Iterator[PublicApi]:
    assert kaizenity_stack.n8n_url
    client = PublicApi(kaizenity_stack.n8n_url, n8n_api_key)
    yield client
    client.close()


def managed(api: PublicApi) -> dict[str, dict[str, Any]]:
    found = [w for w in api.workflows() if w["name"].startswith(MANAGED_PREFIX)]
    assert len({w["name"] for w in found}) == len(found), "each managed workflow exists exactly once"
    return {w["name"]: w for w in found}


def query(stack: LocalEndpoints, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    assert stack.database_url
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_definition_is_deployed_once_with_its_active_state(api: PublicApi) -> None:
    deployed = managed(api)
    files = [json.loads(p.read_text()) for p in sorted(DEFINITIONS_DIR.glob("*.json"))]
    assert set(deployed) == {f["name"] for f in files}
    for definition in files:
        assert deployed[definition["name"]]["active"] == definition["active"], definition["name"]


def test_seeding_again_changes_nothing(kaizenity_stack: LocalEndpoints, api: PublicApi) -> None:
    before = {name: (w["id"], w["updatedAt"], w.get("versionId")) for name, w in managed(api).items()}
    started = time.monotonic()
    report = reseed(kaizenity_stack)
    elapsed = time.monotonic() - started
    assert not report.changed, report
    assert {name: (w["id"], w["updatedAt"], w.get("versionId")) for name, w in managed(api).items()} == before
    assert elapsed < 5, f"a no-op re-seed took {elapsed:.1f} s"


def test_changing_one_file_updates_only_it(kaizenity_stack: LocalEndpoints, api: PublicApi, tmp_path: Path) -> None:
    directory = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS_DIR, directory)
    rollup = directory / "analytics-rollup.json"
    data = json.loads(rollup.read_text())
    data["nodes"][0]["parameters"]["rule"]["interval"][0]["triggerAtHour"] = 3
    rollup.write_text(json.dumps(data))
    try:
        report = reseed(kaizenity_stack, directory=directory)
        assert report.updated == ["Kaizenity: analytics rollup"]
        assert not report.created
        assert not report.activated
    finally:
        assert reseed(kaizenity_stack).updated == ["Kaizenity: analytics rollup"]


def test_an_invalid_file_deploys_nothing(kaizenity_stack: LocalEndpoints, api: PublicApi, tmp_path: Path) -> None:
    directory = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS_DIR, directory)
    heartbeat = directory / "heartbeat.json"
    data = json.loads(heartbeat.read_text())
    data["nodes"][1]["type"] = "n8n-nodes-base.noSuchNode"
    heartbeat.write_text(json.dumps(data))
    rollup = directory / "analytics-rollup.json"
    rollup.write_text(rollup.read_text().replace('"triggerAtHour": 1', '"triggerAtHour": 4'))  # a valid change
    before = {name: w["updatedAt"] for name, w in managed(api).items()}
    with pytest.raises(WorkflowValidationError, match=r"heartbeat\.json: node 'Write heartbeat': field 'type'"):
        reseed(kaizenity_stack, directory=directory)
    assert {name: w["updatedAt"] for name, w in managed(api).items()} == before


def test_editor_made_workflows_are_never_touched(kaizenity_stack: LocalEndpoints, api: PublicApi) -> None:
    mine = api.create_workflow(
        {"name": "Someone's own flow", "nodes": [], "connections": {}, "settings": {"executionOrder": "v1"}}
    )
    reseed(kaizenity_stack)
    assert api.workflow(mine["id"])["updatedAt"] == mine["updatedAt"]
    api.delete_workflow(mine["id"])


def test_heartbeat_rows_appear_on_schedule(kaizenity_stack: LocalEndpoints) -> None:
    first = wait_until(lambda: query(kaizenity_stack, "SELECT count(*) FROM ops.heartbeats")[0][0], 20, "a heartbeat")
    wait_until(
        lambda: query(kaizenity_stack, "SELECT count(*) FROM ops.heartbeats")[0][0] >= first + 2, 20, "more heartbeats"
    )
    (age,) = query(kaizenity_stack, "SELECT extract(epoch FROM now() - max(beat_at)) FROM ops.heartbeats")[0]
    assert age < 10


@pytest.fixture(scope="module")
def gateway(kaizenity_stack: LocalEndpoints) -> Iterator[httpx.Client]:
    assert kaizenity_stack.ca_file
    with httpx.Client(verify=ssl.create_default_context(cafile=kaizenity_stack.ca_file), timeout=15) as client:
        yield client


def test_telegram_update_is_stored_once_and_a_wrong_secret_is_refused(
    kaizenity_stack: LocalEndpoints, gateway: httpx.Client
) -> None:
    url = f"{kaizenity_stack.webhook_base_url}telegram/{kaizenity_stack.secrets['telegramWebhookPathToken']}"
    update = {
        "update_id": 770001,
        "message": {"message_id": 9, "date": 0, "chat": {"id": 4242, "type": "private"}, "text": "hi, there"},
    }
    good = {"X-Telegram-Bot-Api-Secret-Token": kaizenity_stack.secrets["telegramWebhookSecret"]}
    count = "SELECT count(*) FROM ops.messages WHERE channel = 'telegram' AND idempotency_key = %s"
    assert gateway.post(url, json=update, headers=good).status_code == 200
    wait_until(lambda: query(kaizenity_stack, count, "770001")[0][0] == 1, 15, "the message row")
    assert gateway.post(url, json=update, headers=good).status_code == 200  # Telegram redelivers
    time.sleep(2)
    assert query(kaizenity_stack, count, "770001")[0][0] == 1
    assert query(kaizenity_stack, "SELECT chat_id, body FROM ops.messages WHERE idempotency_key = '770001'") == [
        ("4242", "hi, there")
    ]
    other = {**update, "update_id": 770002}
    refused = gateway.post(url, json=other, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
    assert refused.status_code == 403
    wrong_path = gateway.post(f"{kaizenity_stack.webhook_base_url}telegram/guess", json=other, headers=good)
    assert wrong_path.status_code == 404
    time.sleep(2)
    assert query(kaizenity_stack, count, "770002")[0][0] == 0


@pytest.fixture
def fake_telegram(kaizenity_stack: LocalEndpoints) -> Iterator[FakeTelegram]:
    """A fake Bot API on the environment network's gateway address (where n8n's container reaches this host)."""
    network = docker.from_env().networks.get(kaizenity_stack.network)
    host = network.attrs["IPAM"]["Config"][0]["Gateway"]
    fake = FakeTelegram(host)
    reseed(kaizenity_stack, {"telegramApiBaseUrl": fake.base_url, "telegramBotToken": "123456:TEST-token"})
    yield fake
    fake.close()
    reseed(kaizenity_stack)


def test_pending_notification_is_sent_and_marked_sent(
    kaizenity_stack: LocalEndpoints, fake_telegram: FakeTelegram
) -> None:
    (notification,) = query(
        kaizenity_stack,
        "INSERT INTO ops.notifications (channel, recipient, body) VALUES ('telegram', '5151', 'Your report is ready') "
        "RETURNING id",
    )[0]
    status = "SELECT status, attempts FROM ops.notifications WHERE id = %s"
    wait_until(lambda: query(kaizenity_stack, status, notification)[0][0] == "sent", 30, "the notification sent")
    sent = [c for c in fake_telegram.sent_messages() if str(c.params.get("chat_id")) == "5151"]
    assert len(sent) == 1
    assert sent[0].token == "123456:TEST-token"
    assert sent[0].params["text"] == "Your report is ready"
    assert query(kaizenity_stack, status, notification)[0] == ("sent", 1)


def test_failing_sends_back_off_then_dead_letter(kaizenity_stack: LocalEndpoints, fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_with = 500
    (notification,) = query(
        kaizenity_stack,
        "INSERT INTO ops.notifications (channel, recipient, body, max_attempts) "
        "VALUES ('telegram', '6161', 'will fail', 3) RETURNING id",
    )[0]
    status = "SELECT status, attempts FROM ops.notifications WHERE id = %s"
    wait_until(lambda: query(kaizenity_stack, status, notification)[0][0] == "dead", 60, "the dead letter")
    assert query(kaizenity_stack, status, notification)[0] == ("dead", 3)
    attempts = [c for c in fake_telegram.sent_messages() if str(c.params.get("chat_id")) == "6161"]
    assert len(attempts) == 3
    letters = query(
        kaizenity_stack, "SELECT attempts, error FROM ops.dead_letters WHERE source_id = %s", str(notification)
    )
    assert len(letters) == 1
    assert letters[0][0] == 3


def test_analytics_rollup_aggregates_events_per_day(kaizenity_stack: LocalEndpoints) -> None:
    assert kaizenity_stack.database_url
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO analytics.events (name, occurred_at) "
            "SELECT 'rollup.test', now() - interval '1 hour' FROM generate_series(1, 7)"
        )
    reseed(kaizenity_stack, {"rollupUnit": "seconds", "rollupEvery": "3"})
    try:
        count = "SELECT events FROM analytics.daily_aggregates WHERE name = 'rollup.test'"
        rows = wait_until(lambda: query(kaizenity_stack, count), 30, "the daily aggregate")
        assert sum(r[0] for r in rows) == 7
    finally:
        reseed(kaizenity_stack)


def test_a_workflow_removed_from_git_is_deactivated(
    kaizenity_stack: LocalEndpoints, api: PublicApi, tmp_path: Path
) -> None:
    directory = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS_DIR, directory)
    (directory / "analytics-rollup.json").unlink()
    try:
        report = reseed(kaizenity_stack, directory=directory)
        assert report.deactivated == ["Kaizenity: analytics rollup"]
        assert managed(api)["Kaizenity: analytics rollup"]["active"] is False, "kept (history), but off"
    finally:
        assert reseed(kaizenity_stack).activated == ["Kaizenity: analytics rollup"]


def test_dispatch_with_nothing_due_does_not_fail(kaizenity_stack: LocalEndpoints) -> None:
    """An empty claim reaches the keyboard switch as one column-less item (n8n's Postgres node); it must be dropped,
    not crash the run. Read through the error workflow's table (issue 18), which records every failed run."""
    time.sleep(6)  # three dispatch intervals of the test schedule (dispatchSeconds=2)
    failures = query(
        kaizenity_stack,
        "SELECT count(*) FROM ops.workflow_errors WHERE workflow_name = 'Kaizenity: notification dispatch' "
        "AND node_name = 'By keyboard size'",
    )
    assert failures == [(0,)]
