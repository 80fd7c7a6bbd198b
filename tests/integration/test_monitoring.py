"""Monitoring on the real stack (ci + monitoring enabled through a settings override, offline images): Prometheus
scrapes n8n and every exporter; stopping n8n pages a fake Telegram Bot API (tests/fakes/telegram_bot_api.py: the
sendMessage envelope of core.telegram.org/bots/api#sendmessage) within the rule's `for` + scrape and evaluation
intervals + group_wait, and recovery sends "resolved"; a failing seed workflow lands in ops.workflow_errors through
the error workflow and reaches Telegram as WorkflowErrorsRecorded.

Short intervals (5 s scrape/evaluation/group_wait, 10 s group_interval) keep the run to minutes; the rules are
the shipped ones, so N8nDown still waits its 2 minutes.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import httpx
import psycopg
import pytest

from infra import local_engine
from infra.host_ports import free_port
from infra.local_endpoints import LocalEndpoints
from infra.services import monitoring
from tests.fakes.telegram_bot_api import FakeTelegram
from tests.integration.n8n_keys import n8n_test_key
from workflows.n8n_api import PublicApi

pytestmark = pytest.mark.integration

MONITORING_IMAGE = "kaizenity-local/monitoring:1"
BOT_TOKEN = "424242:monitoring-test-token"
CHAT_ID = "-100777"
SCRAPE_S, EVALUATION_S, GROUP_WAIT_S, GROUP_INTERVAL_S = 5, 5, 5, 10
N8N_DOWN_FOR_S = 120  # monitoring/rules/platform.yml: N8nDown `for: 2m`
SLACK_S = 45  # a loaded 2-core host: container stop/start and Alertmanager's send


@dataclass
class Monitored:
    endpoints: LocalEndpoints
    telegram: FakeTelegram
    prometheus: str
    prefix: str

    def container(self, service: str) -> Any:
        return docker.from_env().containers.get(f"{self.prefix}-{service}")


def _host_address_reachable_from_containers() -> str:
    """The docker0 bridge's address: a host address every container can reach, known before the environment's
    own network exists (the Alertmanager configuration is rendered before it is)."""
    bridge = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]
    return str(bridge.get("Gateway") or next(ipaddress.ip_network(bridge["Subnet"]).hosts()))


@pytest.fixture(scope="module")
def monitored() -> Iterator[Monitored]:
    telegram = FakeTelegram(_host_address_reachable_from_containers())
    prefix = f"kzt-mon-{secrets.token_hex(3)}"
    prometheus_port = free_port()
    monitoring = {
        "enabled": True,
        "publish": "loopback",
        "prometheusHostPort": prometheus_port,
        "alertmanagerHostPort": free_port(),
        "scrapeIntervalS": SCRAPE_S,
        "evaluationIntervalS": EVALUATION_S,
        "groupWaitS": GROUP_WAIT_S,
        "groupIntervalS": GROUP_INTERVAL_S,
        "telegramChatId": CHAT_ID,
        "telegramApiUrl": telegram.base_url,
        "images": dict.fromkeys(
            ("prometheus", "alertmanager", "postgresExporter", "redisExporter", "nodeExporter", "healthExporter"),
            MONITORING_IMAGE,
        ),
    }
    try:
        _stack, endpoints = local_engine.start(
            "ci",
            prefix=prefix,
            offline=True,
            free_ports=True,
            record=False,
            preset_secrets={"monitoringTelegramBotToken": BOT_TOKEN},
            seed_values={"heartbeatUnit": "seconds", "heartbeatEvery": "5"},
            overrides={"monitoring": monitoring},
        )
    except BaseException as exc:  # Ctrl-C too: never leave the environment behind
        local_engine.stop(prefix)
        telegram.close()
        if not isinstance(exc, Exception):
            raise
        pytest.fail(f"could not bring up ci with monitoring: {exc}\nFix: `bash images/build.sh monitoring`")
    try:
        yield Monitored(endpoints, telegram, f"http://127.0.0.1:{prometheus_port}", prefix)
    finally:
        local_engine.stop(prefix)
        telegram.close()


def wait_for(
    condition: Callable[[], Any], timeout_s: float, what: str, explain: Callable[[], Any] | None = None
) -> Any:
    """Until `condition` is truthy, or fail after `timeout_s` naming `what` and, with `explain`, what it was then."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    detail = f"; last seen: {explain()}" if explain else ""
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")


def promql(monitored: Monitored, expr: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{monitored.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    reply.raise_for_status()
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


def pages(monitored: Monitored, *words: str) -> list[str]:
    texts = [str(call.params.get("text", "")) for call in monitored.telegram.sent_messages()]
    return [text for text in texts if all(word in text for word in words)]


def query(endpoints: LocalEndpoints, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    assert endpoints.database_url
    with psycopg.connect(endpoints.database_url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def test_prometheus_scrapes_n8n_the_gateway_and_every_exporter(monitored: Monitored) -> None:
    """`up == 1` says a target answered its /metrics, not that what it measures is ready: postgres_exporter answers
    with pg_up 0 until its login exists (made after the migrations), and each health scrape runs the probes afresh
    (the database probe says CRITICAL while the schema is behind). So each measurement is waited for with a
    deadline, as a fresh scrape's result; a failure shows what Prometheus and the exporter said last."""
    jobs = {"prometheus", "alertmanager", "n8n", "health", "postgres", "node", "gateway"}

    def all_up() -> bool:
        return {r["metric"]["job"] for r in promql(monitored, "up == 1")} >= jobs

    wait_for(all_up, 120, f"every scrape job up ({', '.join(sorted(jobs))})", lambda: promql(monitored, "up"))
    volume = 'node_filesystem_avail_bytes{mountpoint="/volumes/pgdata"}'
    wait_for(lambda: promql(monitored, volume), 60, "the volume filesystem metric")
    wait_for(
        lambda: promql(monitored, "pg_up == 1") and promql(monitored, "pg_settings_max_connections"),
        60,
        "postgres_exporter's metrics (pg_up 1: its kaizenity_monitor login works)",
        lambda: promql(monitored, "pg_up"),
    )
    wait_for(
        lambda: promql(monitored, 'probe_success{probe="database"} == 1'),
        60,
        "the health exporter's database probe to succeed (as kaizenity_monitor)",
        lambda: (promql(monitored, 'kaizenity_probe_status{probe="database"}'), _database_probe(monitored)),
    )
    # FailedExecutionsHigh's input: the n8n probe reads failed executions (and the seed workflows) from n8n's
    # database as the read-only login kaizenity_n8n_reader; with no API key it had none before (issue 14).
    wait_for(
        lambda: promql(monitored, 'kaizenity_probe_failed_executions{probe="n8n"}'),
        90,
        "the health exporter's failed-execution count (n8n's database, read-only login)",
        lambda: _exporter_probe(monitored, "n8n"),
    )
    answer = _exporter_probe(monitored, "n8n")
    assert 'kaizenity_probe_workflows{probe="n8n"}' in answer, answer
    assert "n8n.state" not in answer, answer  # configured: the reader URL reached the exporter
    caddy = wait_for(lambda: promql(monitored, 'count({job="gateway", __name__=~"caddy_.+"})'), 60, "Caddy metrics")
    assert int(caddy[0]["value"][1]) > 0


def _database_probe(monitored: Monitored) -> str:
    """The health exporter's own answer for the database probe, from inside its container."""
    return _exporter_probe(monitored, "database")


def _exporter_probe(monitored: Monitored, target: str) -> str:
    """The health exporter's own answer for one probe, from inside its container."""
    url = f"http://127.0.0.1:9840/probe?target={target}"
    script = f"import urllib.request; print(urllib.request.urlopen('{url}').read().decode())"
    done = monitored.container("health-exporter").exec_run(["python3", "-c", script])
    return str(done.output.decode(errors="replace"))[-1500:]


def test_the_exporters_login_reads_statistics_and_nothing_else(monitored: Monitored) -> None:
    """Migration 0013's kaizenity_monitoring (pg_monitor) through the login postgres_exporter and the health
    exporter use (the health exporter's database probe succeeding is in the test above)."""
    endpoints = monitored.endpoints
    assert endpoints.database_url
    host = endpoints.database_url.split("@", 1)[1]
    password = endpoints.secrets["monitoringDatabasePassword"]
    with psycopg.connect(f"postgresql://kaizenity_monitor:{password}@{host}", autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role('pg_monitor', 'USAGE') FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, True)
        hidden = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename <> current_user AND query = '<insufficient privilege>'"
        ).fetchone()
        assert hidden == (0,), "pg_read_all_stats: other roles' activity is visible"
        # postgres_exporter's custom query, the health probes' schema, heartbeat and backup checks
        for table in ("ops.workflow_errors", "kaizenity_meta.schema_migrations", "ops.heartbeats", "ops.base_backups"):
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        for statement in (
            "SELECT 1 FROM core.tenants LIMIT 1",
            "DELETE FROM ops.workflow_errors",
            "CREATE TABLE x (i int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_alertmanager_accepts_its_rendered_configuration(monitored: Monitored) -> None:
    done = monitored.container("alertmanager").exec_run(["amtool", "check-config", "/etc/kaizenity-alertmanager.yml"])
    assert done.exit_code == 0, done.output.decode()
    token = monitored.container("alertmanager").exec_run(["cat", monitoring.BOT_TOKEN_FILE]).output.decode()
    assert token == BOT_TOKEN
    config = monitored.container("alertmanager").exec_run(["cat", "/etc/kaizenity-alertmanager.yml"]).output.decode()
    assert BOT_TOKEN not in config


def test_every_seed_workflow_reports_to_the_error_workflow(monitored: Monitored) -> None:
    endpoints = monitored.endpoints
    assert endpoints.n8n_url
    with n8n_test_key(endpoints) as key:
        api = PublicApi(endpoints.n8n_url, key)  # closed with the test process
        ours = {w["name"]: w for w in api.workflows() if str(w["name"]).startswith("Kaizenity: ")}
        handler = ours.pop("Kaizenity: error handler")
        assert len(ours) >= 5
        for name, summary in ours.items():
            settings = api.workflow(str(summary["id"])).get("settings") or {}
            assert settings.get("errorWorkflow") == str(handler["id"]), name


def test_failing_seed_workflow_is_recorded_and_alerted(monitored: Monitored) -> None:
    endpoints = monitored.endpoints
    wait_for(lambda: query(endpoints, "SELECT 1 FROM ops.heartbeats LIMIT 1"), 60, "a first heartbeat")
    query(endpoints, "REVOKE INSERT ON ops.heartbeats FROM kaizenity_app")  # the heartbeat (every 5 s) now fails
    sql = (
        "SELECT workflow_name, node_name, message, execution_id FROM ops.workflow_errors "
        "WHERE workflow_name = 'Kaizenity: heartbeat'"
    )
    try:
        deadline = time.monotonic() + 120
        while not (rows := query(endpoints, sql)) and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        query(endpoints, "GRANT INSERT ON ops.heartbeats TO kaizenity_app")
    assert rows, f"the error workflow recorded nothing in 120 s; n8n says: {_recent_executions(monitored)}"
    _workflow, node, message, execution_id = rows[0]
    assert node == "Write heartbeat"
    assert "permission denied" in message
    assert execution_id
    budget = SCRAPE_S + EVALUATION_S + GROUP_WAIT_S + SLACK_S
    found = wait_for(lambda: pages(monitored, "WorkflowErrorsRecorded", "Kaizenity: heartbeat"), budget, "the page")
    assert "docs/runbook.md#workflowerrorsrecorded" in found[0]


def _recent_executions(monitored: Monitored) -> list[tuple[Any, ...]]:
    """The last executions n8n recorded (workflow, mode, status), to say why nothing was recorded."""
    endpoints = monitored.endpoints
    with n8n_test_key(endpoints) as key:
        reply = httpx.get(
            f"{endpoints.n8n_url}/api/v1/executions",
            params={"limit": 10, "includeData": "false"},
            headers={"X-N8N-API-KEY": key},
            timeout=10,
        )
    items = reply.json().get("data", []) if reply.status_code == 200 else [reply.status_code]
    logs = monitored.container("n8n").logs(tail=400).decode(errors="replace")
    errors = [line for line in logs.splitlines() if "Error Workflow" in line or "error workflow" in line][-5:]
    return [(i.get("workflowId"), i.get("mode"), i.get("status")) if isinstance(i, dict) else i for i in items] + [
        tuple(errors)
    ]


def test_stopping_n8n_pages_once_and_recovery_resolves(monitored: Monitored) -> None:
    n8n = monitored.container("n8n")
    n8n.stop(timeout=30)
    stopped = time.monotonic()
    try:
        budget = N8N_DOWN_FOR_S + SCRAPE_S + EVALUATION_S + GROUP_WAIT_S + SLACK_S
        firing = wait_for(lambda: pages(monitored, "FIRING", "N8nDown"), budget, "the N8nDown page")
        elapsed = time.monotonic() - stopped
        assert elapsed >= N8N_DOWN_FOR_S - SCRAPE_S, f"paged after {elapsed:.0f} s: the rule's `for` was not honoured"
        assert "docs/runbook.md#n8ndown" in firing[0]
        print(f"N8nDown paged {elapsed:.0f} s after n8n stopped (budget {budget} s)")
    finally:
        n8n.start()
    restarted = time.monotonic()
    wait_for(lambda: pages(monitored, "RESOLVED", "N8nDown"), 480, "the resolved message")  # n8n restarts slowly here
    print(f"N8nDown resolved {time.monotonic() - restarted:.0f} s after n8n was started again")
    assert len(pages(monitored, "FIRING", "N8nDown")) == 1, "one outage, one page"


def test_error_messages_are_redacted_before_they_are_stored(monitored: Monitored) -> None:
    message = (
        "request to https://api.telegram.org/bot123456:AAH-secret_part/sendMessage failed; "
        "Authorization: Bearer abc.def.ghi; password=hunter2 token: 's3cr3t'"
    )
    (redacted,) = query(monitored.endpoints, "SELECT ops.redact_error_message(%s)", message)[0]
    for secret in ("AAH-secret_part", "abc.def.ghi", "hunter2", "s3cr3t"):
        assert secret not in redacted, redacted
    assert "bot<redacted>/sendMessage" in redacted
    (long,) = query(monitored.endpoints, "SELECT length(ops.redact_error_message(repeat('x', 2000)))")[0]
    assert long == 500
