"""The database, n8n and gateway probes against the real containers: healthy, then broken in the ways on-call
meets them (a paused or stopped container, a wrong password, a schema behind), then healthy again."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import docker
import psycopg
import pytest
from psycopg import sql

from bootstrap.app_login import N8N_READER_USER
from bootstrap.catalog import load_migrations
from bootstrap.runner import apply_migrations
from healthchecks.config import build_plan
from healthchecks.formats import render
from healthchecks.report import Report
from healthchecks.result import Status
from healthchecks.runner import run
from infra.local_endpoints import LocalEndpoints
from infra.local_seeding import seed_workflows
from workflows.deploy import SEEDER_KEY_LABEL
from workflows.n8n_api import N8nSession, PublicApi

pytestmark = pytest.mark.integration
TIMEOUT = 3.0


def settings(stack: LocalEndpoints, **overrides: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "defaults": {"timeout": TIMEOUT},
        "database": {"url": stack.database_url},
        "n8n": {"url": stack.n8n_url, "database_url": stack.n8n_reader_database_url},
        "gateway": {"url": stack.gateway_url, "ca_file": stack.ca_file, "tls_internal": True},
    }
    for section, changes in overrides.items():
        values[section] = {**values[section], **changes}
    return values


def probe(stack: LocalEndpoints, name: str, **overrides: dict[str, Any]) -> tuple[Report, float]:
    plan = build_plan(settings(stack, **overrides)).select([name], [])
    started = time.monotonic()
    report = run(plan)
    elapsed = time.monotonic() - started
    for fmt in ("table", "json", "prometheus", "nagios"):
        text = render(report, fmt, plan.redactor, color=False)
        for secret in (stack.secrets["postgresPassword"], stack.secrets["n8nReaderDbPassword"]):
            assert secret not in text, f"a secret leaked in the {fmt} output"
    return report, elapsed


@pytest.fixture
def container(kaizenity_stack: LocalEndpoints) -> Any:
    client = docker.from_env()
    return lambda service: client.containers.get(kaizenity_stack.containers[service])


def wait_for_first_heartbeat(stack: LocalEndpoints) -> None:
    assert stack.database_url
    deadline = time.monotonic() + 30
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        while not conn.execute("SELECT count(*) FROM ops.heartbeats").fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the heartbeat workflow never ran"
            time.sleep(0.5)


def test_all_three_healthy(kaizenity_stack: LocalEndpoints) -> None:
    wait_for_first_heartbeat(kaizenity_stack)  # a just-seeded n8n has not beaten yet: that is CRITICAL
    # Other tests of the session fail executions on purpose (Coda 429s, refused sends, a failing insert): here they
    # may warn, never page; test_seed_workflows_and_heartbeat_are_checked covers the threshold itself.
    noisy = {"failed_executions_critical": 10**6}
    plan = build_plan(settings(kaizenity_stack, n8n=noisy)).select(["database", "n8n", "gateway"], [])
    report = run(plan)
    statuses = {r.probe: r.status for r in report.results}
    assert statuses["database"] is Status.OK, report.results
    assert statuses["gateway"] is Status.OK, report.results
    n8n_result = next(r for r in report.results if r.probe == "n8n")
    assert statuses["n8n"] in {Status.OK, Status.WARNING}, (
        n8n_result.summary,
        n8n_result.remediation,
    )  # WARNING: failed runs of other tests


def test_seed_workflows_and_heartbeat_are_checked(kaizenity_stack: LocalEndpoints) -> None:
    report, _ = probe(kaizenity_stack, "n8n")
    result = report.results[0]
    values = {m.name: m.value for m in result.measurements}
    assert values["active_workflows"] >= 4
    assert values["heartbeat_age"] < 30
    missing, _ = probe(kaizenity_stack, "n8n", n8n={"seed_workflows": "Kaizenity: no such workflow"})
    assert missing.results[0].status is Status.CRITICAL
    assert "missing" in missing.results[0].summary


def test_wrong_database_password_is_critical(kaizenity_stack: LocalEndpoints) -> None:
    assert kaizenity_stack.database_url
    wrong = kaizenity_stack.database_url.replace(kaizenity_stack.secrets["postgresPassword"], "not-the-password")
    report, _ = probe(kaizenity_stack, "database", database={"url": wrong})
    assert report.results[0].status is Status.CRITICAL
    assert "password" in report.results[0].summary.lower()


@pytest.fixture
def schema_behind(kaizenity_stack: LocalEndpoints) -> Iterator[str]:
    """A database migrated to 0002 only."""
    assert kaizenity_stack.database_url
    name = f"behind_{secrets.token_hex(3)}"
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = kaizenity_stack.database_url.rsplit("/", 1)[0] + "/" + name
    apply_migrations(url, load_migrations()[:2])
    yield url
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_schema_behind_is_reported_with_the_pending_count(kaizenity_stack: LocalEndpoints, schema_behind: str) -> None:
    report, _ = probe(kaizenity_stack, "database", database={"url": schema_behind})
    result = report.results[0]
    assert result.status in {Status.WARNING, Status.CRITICAL}
    pending = {m.name: m.value for m in result.measurements}["migrations_pending"]
    assert pending == len(load_migrations()) - 2


@pytest.mark.parametrize("service", ["postgres", "n8n"])
def test_a_paused_dependency_is_critical_within_one_timeout(
    kaizenity_stack: LocalEndpoints, container: Any, service: str
) -> None:
    paused = container(service)
    paused.pause()
    try:
        report, elapsed = probe(kaizenity_stack, "database" if service == "postgres" else service)
    finally:
        paused.unpause()
    assert report.results[0].status is Status.CRITICAL
    assert elapsed < TIMEOUT + 1


def test_stopped_gateway_is_critical_then_recovers(kaizenity_stack: LocalEndpoints, container: Any) -> None:
    gateway = container("gateway")
    gateway.stop(timeout=5)
    try:
        report, _ = probe(kaizenity_stack, "gateway")
        assert report.results[0].status is Status.CRITICAL
        assert report.results[0].remediation
    finally:
        gateway.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report, _ = probe(kaizenity_stack, "gateway")
        if report.results[0].status is Status.OK:
            return
        time.sleep(0.5)
    pytest.fail(f"gateway did not recover: {report.results[0].summary}")


# --- issue 14: no n8n API key is kept; health reads n8n's state through a read-only login -------------------------

ROLLUP = "Kaizenity: analytics rollup"  # an active seed workflow whose brief deactivation harms nothing


def n8n_rows(stack: LocalEndpoints, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A statement in n8n's database as n8n's own role (the test's view, not health's)."""
    assert stack.n8n_database_url
    with psycopg.connect(stack.n8n_database_url, autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def n8n_checks(stack: LocalEndpoints) -> dict[str, Any]:
    report, _ = probe(stack, "n8n", n8n={"heartbeat": False})
    return {check.name: check for check in report.results[0].checks}


def test_seeding_leaves_no_api_key_and_health_reads_n8n_without_one(kaizenity_stack: LocalEndpoints) -> None:
    """A key a crashed older run left behind and the run's own key are both gone after `seed`; health has no key and
    still reports the seed workflows and failed executions, from n8n's database as the read-only login."""
    assert kaizenity_stack.n8n_url
    session = N8nSession(kaizenity_stack.n8n_url)
    try:  # what a crashed run of an older version left: a seeder key that never expires
        session.login(kaizenity_stack.n8n_owner_email, kaizenity_stack.secrets["n8nOwnerPassword"])
        session.create_api_key(f"{SEEDER_KEY_LABEL} 2025-01-01T00:00:00Z", expires_at=None)
    finally:
        session.close()
    assert n8n_rows(kaizenity_stack, "SELECT 1 FROM user_api_keys WHERE label LIKE 'kaizenity-seeder%'")
    seed_workflows(kaizenity_stack)  # what `kaizenity workflows seed` runs
    left = n8n_rows(kaizenity_stack, "SELECT label FROM user_api_keys WHERE label NOT LIKE 'kaizenity-test %'")
    assert left == [], f"API keys left in n8n after seeding: {left}"
    assert not hasattr(kaizenity_stack, "n8n_api_key")
    assert "api_key" not in settings(kaizenity_stack)["n8n"]
    checks = n8n_checks(kaizenity_stack)
    assert checks["workflows"].status is Status.OK, checks["workflows"]
    assert checks["workflows"].text.endswith("seed workflows active")
    assert checks["executions"].text.startswith(("0 failed executions", "1 failed", "2 failed")), checks["executions"]


def test_the_reader_login_sees_only_its_columns(kaizenity_stack: LocalEndpoints) -> None:
    assert kaizenity_stack.n8n_reader_database_url
    with psycopg.connect(kaizenity_stack.n8n_reader_database_url, autocommit=True) as conn:
        assert conn.execute('SELECT count(*) FROM workflow_entity WHERE "activeVersionId" IS NOT NULL').fetchone()
        for statement in (
            "SELECT data FROM execution_data LIMIT 1",
            "SELECT data FROM credentials_entity LIMIT 1",
            'SELECT "apiKey" FROM user_api_keys LIMIT 1',
            'SELECT password FROM "user" LIMIT 1',
            "SELECT nodes FROM workflow_entity LIMIT 1",
            "SELECT * FROM execution_entity LIMIT 1",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        write = "UPDATE workflow_entity SET name = name WHERE false"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(write)  # read-only by default ...
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(write)  # ... and by privilege


def test_inactive_seed_workflow_and_failed_executions_come_from_the_database(
    kaizenity_stack: LocalEndpoints, n8n_api_key: str
) -> None:
    assert kaizenity_stack.n8n_url
    api = PublicApi(kaizenity_stack.n8n_url, n8n_api_key)
    rollup = next(w for w in api.workflows() if w["name"] == ROLLUP)
    api.set_active(str(rollup["id"]), False)
    try:
        checks = n8n_checks(kaizenity_stack)
    finally:
        api.set_active(str(rollup["id"]), True)
        api.close()
    assert checks["workflows"].status is Status.CRITICAL
    assert checks["workflows"].text == f"seed workflows inactive: {ROLLUP}"
    before = int(checks["executions"].text.split()[0])
    # Failed executions as n8n records them (status error, and crashed ones), one outside the window.
    insert = (
        'INSERT INTO execution_entity (finished, mode, status, "createdAt", "startedAt", "stoppedAt", "workflowId") '
        "VALUES (false, 'trigger', %s, now() - %s::interval, now() - %s::interval, now(), %s) RETURNING id"
    )
    ids = [
        n8n_rows(kaizenity_stack, insert, (status, age, age, str(rollup["id"])))[0][0]
        for status, age in (("error", "5 minutes"), ("crashed", "10 minutes"), ("error", "5 hours"))
    ]
    try:
        checks = n8n_checks(kaizenity_stack)
    finally:
        n8n_rows(kaizenity_stack, "DELETE FROM execution_entity WHERE id = ANY(%s)", (ids,))
    assert checks["executions"].status in {Status.WARNING, Status.CRITICAL}
    assert checks["executions"].text.startswith(f"{before + 2} failed executions in the last 60 min")
    assert str(rollup["id"]) in checks["executions"].text


def test_a_missing_grant_names_the_cause_and_the_fix_then_seeding_repairs_it(kaizenity_stack: LocalEndpoints) -> None:
    n8n_rows(kaizenity_stack, f"REVOKE SELECT ON workflow_entity FROM {N8N_READER_USER}")
    report, _ = probe(kaizenity_stack, "n8n", n8n={"heartbeat": False})
    result = report.results[0]
    checks = {check.name: check for check in result.checks}
    assert checks["workflows"].status is Status.CRITICAL
    assert "lacks a privilege" in checks["workflows"].text
    assert "permission denied for table workflow_entity" in checks["workflows"].text
    assert "kaizenity workflows seed" in result.remediation
    assert checks["executions"].status is Status.OK, "the other check still reports"
    seed_workflows(kaizenity_stack)
    assert n8n_checks(kaizenity_stack)["workflows"].status is Status.OK
