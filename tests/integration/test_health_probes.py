"""The database, n8n and gateway probes against the real containers of the CI stack, healthy and broken.

Broken states are made by pausing or stopping a container of the shared session stack and restoring it
before the test ends, so the order of tests does not matter. The schema and heartbeat tables the probes
read are created here with the shapes issue 4 will give them, in a private migrations directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import psycopg
import pytest
from click.testing import CliRunner

from healthchecks import database, gateway, n8n
from healthchecks.context import ProbeContext
from healthchecks.heartbeat import sql_heartbeat
from healthchecks.redaction import Redactor
from healthchecks.result import ProbeResult, Status
from infra.local_engine import LocalEndpoints
from kaizenity.cli import main

pytestmark = pytest.mark.integration
TIMEOUT = 3.0
MIGRATION = "CREATE TABLE IF NOT EXISTS ops.health_probe_marker (id int);\n"


def ctx(endpoints: LocalEndpoints, timeout: float = TIMEOUT) -> ProbeContext:
    return ProbeContext(timeout=timeout, retries=1, redactor=Redactor(endpoints.secrets.values()))


@pytest.fixture(scope="module")
def migrations(kaizenity_stack: LocalEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migration file, recorded as applied in kaizenity_meta.schema_migrations; a heartbeat just now."""
    directory = tmp_path_factory.mktemp("migrations")
    (directory / "0001_health_probe.sql").write_text(MIGRATION)
    checksum = hashlib.sha256(MIGRATION.encode()).hexdigest()
    assert kaizenity_stack.database_url
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS kaizenity_meta")
        conn.execute("CREATE SCHEMA IF NOT EXISTS ops")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kaizenity_meta.schema_migrations"
            " (version text PRIMARY KEY, name text, checksum text, applied_at timestamptz DEFAULT now())"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS ops.heartbeats (source text, beat_at timestamptz)")
        conn.execute(MIGRATION)
        conn.execute(
            "INSERT INTO kaizenity_meta.schema_migrations (version, name, checksum) VALUES ('0001', 'health_probe', %s)"
            " ON CONFLICT (version) DO UPDATE SET checksum = excluded.checksum",
            [checksum],
        )
        conn.execute("INSERT INTO ops.heartbeats VALUES ('n8n-heartbeat', now())")
    return directory


def _database(endpoints: LocalEndpoints, migrations: Path, dsn: str | None = None) -> database.DatabaseTarget:
    return database.DatabaseTarget(dsn or endpoints.database_url or "", migrations_dir=migrations)


def _n8n(endpoints: LocalEndpoints) -> n8n.N8nTarget:
    assert endpoints.n8n_url
    assert endpoints.database_url
    return n8n.N8nTarget(endpoints.n8n_url, heartbeat=sql_heartbeat(endpoints.database_url, "n8n-heartbeat"))


def _gateway(endpoints: LocalEndpoints) -> gateway.GatewayTarget:
    return gateway.GatewayTarget(endpoints.gateway_url, ca_file=endpoints.ca_file)


def _timed(run: Callable[[], ProbeResult]) -> tuple[ProbeResult, float]:
    started = time.monotonic()
    return run(), time.monotonic() - started


@contextmanager
def container_state(endpoints: LocalEndpoints, service: str, action: str) -> Iterator[Any]:
    """Pause or stop one container of the stack, and always bring it back."""
    container = docker.from_env().containers.get(endpoints.containers[service])
    getattr(container, action)()
    try:
        yield container
    finally:
        if action == "pause":
            container.unpause()
        else:
            container.start()


def _wait_ready(endpoints: LocalEndpoints, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            webhook = httpx.get(f"{endpoints.n8n_url}/webhook/kaizenity-healthcheck", timeout=2)
            if "is not registered" in webhook.text:  # readiness comes before webhooks: wait for those
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail("n8n did not come back within 90 s")


def test_database_healthy(kaizenity_stack: LocalEndpoints, migrations: Path) -> None:
    result = database.probe(_database(kaizenity_stack, migrations), ctx(kaizenity_stack))
    assert result.status is Status.OK, result
    assert "schema at latest migration 0001_health_probe" in result.summary
    names = {m.name for m in result.measurements}
    assert {"latency", "connections_used_percent", "longest_transaction", "size", "migrations_pending"} <= names


def test_database_schema_behind(kaizenity_stack: LocalEndpoints, migrations: Path, tmp_path: Path) -> None:
    for path in migrations.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "0002_not_yet.sql").write_text("SELECT 1;\n")
    result = database.probe(_database(kaizenity_stack, tmp_path), ctx(kaizenity_stack))
    assert result.status is Status.CRITICAL
    assert "schema behind: 1 migration(s) pending (0002_not_yet)" in result.summary


def test_database_wrong_password(kaizenity_stack: LocalEndpoints, migrations: Path) -> None:
    assert kaizenity_stack.database_url
    scheme, rest = kaizenity_stack.database_url.split("://", 1)
    user, host = rest.split(":", 1)[0], rest.split("@", 1)[1]
    dsn = f"{scheme}://{user}:wrong-password-123@{host}"
    result = database.probe(_database(kaizenity_stack, migrations, dsn), ctx(kaizenity_stack))
    assert result.status is Status.CRITICAL
    assert "password authentication failed" in result.summary
    assert "wrong-password-123" not in repr(result)


def test_database_paused_costs_one_timeout(kaizenity_stack: LocalEndpoints, migrations: Path) -> None:
    with container_state(kaizenity_stack, "postgres", "pause"):
        result, elapsed = _timed(lambda: database.probe(_database(kaizenity_stack, migrations), ctx(kaizenity_stack)))
    assert result.status is Status.CRITICAL
    assert elapsed < TIMEOUT + 1.5


def test_n8n_healthy_with_recent_heartbeat(kaizenity_stack: LocalEndpoints, migrations: Path) -> None:
    result = n8n.probe(_n8n(kaizenity_stack), ctx(kaizenity_stack))
    assert result.status is Status.OK, result
    assert "heartbeat" in {check.name for check in result.checks}


def test_gateway_healthy(kaizenity_stack: LocalEndpoints) -> None:
    result = gateway.probe(_gateway(kaizenity_stack), ctx(kaizenity_stack))
    assert result.status is Status.OK, result
    assert "internal-CA certificate" in result.summary or "certificate expires" in result.summary


def test_n8n_stopped(kaizenity_stack: LocalEndpoints, migrations: Path) -> None:
    with container_state(kaizenity_stack, "n8n", "stop"):
        n8n_result = n8n.probe(_n8n(kaizenity_stack), ctx(kaizenity_stack))
        gateway_result = gateway.probe(_gateway(kaizenity_stack), ctx(kaizenity_stack))
    _wait_ready(kaizenity_stack)
    assert n8n_result.status is Status.CRITICAL
    assert gateway_result.status is Status.CRITICAL
    assert "webhook route does not reach n8n" in gateway_result.summary


def test_gateway_stopped(kaizenity_stack: LocalEndpoints) -> None:
    with container_state(kaizenity_stack, "gateway", "stop"):
        result, elapsed = _timed(lambda: gateway.probe(_gateway(kaizenity_stack), ctx(kaizenity_stack)))
    assert result.status is Status.CRITICAL
    assert elapsed < TIMEOUT + 1.0


def test_stale_heartbeat_is_reported(kaizenity_stack: LocalEndpoints, migrations: Path) -> None:
    assert kaizenity_stack.database_url
    source = f"stale-{datetime.now(UTC).timestamp()}"
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ops.heartbeats VALUES (%s, now() - interval '2 hours')", [source])
    target = n8n.N8nTarget(kaizenity_stack.n8n_url or "", heartbeat=sql_heartbeat(kaizenity_stack.database_url, source))
    result = n8n.probe(target, ctx(kaizenity_stack))
    assert result.status is Status.CRITICAL
    assert "last heartbeat 120" in result.summary


def test_cli_with_stack_state_runs_everything_in_parallel(
    kaizenity_stack: LocalEndpoints, migrations: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kaizenity health --stack PREFIX` finds every target in the state file; no secret reaches the output."""
    (tmp_path / f"{kaizenity_stack.prefix}.json").write_text(json.dumps(dataclasses.asdict(kaizenity_stack)))
    config = tmp_path / "health.yaml"
    config.write_text(f"database:\n  migrations_dir: {migrations}\n")
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
    for name in ("KAIZENITY_DATABASE_URL", "KAIZENITY_N8N_URL", "KAIZENITY_GATEWAY_URL"):
        monkeypatch.delenv(name, raising=False)
    for fmt in ("json", "table", "nagios", "prometheus"):
        result = CliRunner().invoke(main, ["health", "--stack", kaizenity_stack.prefix, "--config", str(config),
                                           "--format", fmt, "--only", "database,n8n,gateway"])  # fmt: skip
        for secret in kaizenity_stack.secrets.values():
            assert secret not in result.output
        if fmt == "json":
            document = json.loads(result.output)
            assert {probe["probe"]: probe["status"] for probe in document["probes"]} == {
                "database": "OK",
                "n8n": "OK",
                "gateway": "OK",
            }, result.output
            assert result.exit_code == 0
