"""Logic of the database, n8n and gateway probes, and of the runner, without containers."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bootstrap.catalog import MigrationFileError
from healthchecks import gateway, n8n
from healthchecks.context import ProbeContext
from healthchecks.migrations import MigrationFile, compare, read_files
from healthchecks.n8n_state import FailedExecution, N8nStateSource, Workflow
from healthchecks.plan import Plan, Planned
from healthchecks.redaction import Redactor
from healthchecks.result import ProbeResult, Status
from healthchecks.runner import GRACE_SECONDS, run
from healthchecks.x509 import parse_certificate
from tests.fakes.n8n import N8nFake
from tests.fakes.server import Fault

API_KEY = "n8n-api-key-secret"
FILES = [MigrationFile("0001", "roles", "a" * 64), MigrationFile("0002", "core", "b" * 64)]


def ctx(timeout: float = 1.0) -> ProbeContext:
    return ProbeContext(timeout=timeout, retries=1, backoff=0.05, redactor=Redactor([API_KEY]))


# --- migrations -------------------------------------------------------------------------------------------


def test_schema_at_latest() -> None:
    state = compare(FILES, [("1", "a" * 64), ("0002", "b" * 64)])
    assert (state.pending, state.drifted, state.ahead, state.latest) == ((), (), (), "0002_core")


def test_schema_behind_drifted_and_ahead() -> None:
    state = compare(FILES, [("0001", "c" * 64), ("0003", "d" * 64)])
    assert state.pending == ("0002_core",)
    assert state.drifted == ("0001_roles",)
    assert state.ahead == ("3",)


def test_read_files_hashes_contents_in_version_order(tmp_path: Path) -> None:
    (tmp_path / "0010_later.sql").write_text("select 10;")
    (tmp_path / "0002_core.sql").write_text("select 2;")
    files = read_files(tmp_path)
    assert [item.version for item in files] == ["0002", "0010"]
    assert files[0].checksum == hashlib.sha256(b"select 2;").hexdigest()


def test_read_files_has_the_runners_rule_for_stray_files(tmp_path: Path) -> None:
    """One reader for the runner and the probe: a file the runner refuses is no migration to the probe either."""
    (tmp_path / "0002_core.sql").write_text("select 2;")
    (tmp_path / "README.sql").write_text("not a migration")
    with pytest.raises(MigrationFileError, match=r"README\.sql"):
        read_files(tmp_path)


# --- n8n ----------------------------------------------------------------------------------------------------


class FakeState(N8nStateSource):
    """n8n's workflows and failed executions as the reader login would see them (the SQL itself is exercised
    against a real n8n by tests/integration/test_health_probes.py)."""

    def __init__(self) -> None:
        self.workflows_list = [Workflow("Heartbeat", True)]
        self.failed: list[FailedExecution] = []
        self.error: Exception | None = None
        self.asked_since: datetime | None = None

    def workflows(self, budget: float) -> list[Workflow]:
        if self.error:
            raise self.error
        return list(self.workflows_list)

    def failed_executions(self, since: datetime, budget: float) -> list[FailedExecution]:
        if self.error:
            raise self.error
        self.asked_since = since
        return [item for item in self.failed if item.started_at is None or item.started_at >= since]


def _n8n_target(fake: N8nFake, **overrides: object) -> n8n.N8nTarget:
    values: dict[str, object] = {"url": fake.base_url, "state": FakeState(), "seed_workflows": ("Heartbeat",)}
    values.update(overrides)
    return n8n.N8nTarget(**values)  # type: ignore[arg-type]


def test_n8n_healthy() -> None:
    with N8nFake(API_KEY) as fake:
        beat = datetime.now(UTC) - timedelta(minutes=2)
        result = n8n.probe(_n8n_target(fake, heartbeat=lambda budget: beat), ctx())
    assert result.status is Status.OK, result


def test_n8n_not_ready_is_critical() -> None:
    with N8nFake(API_KEY) as fake:
        fake.ready = False
        result = n8n.probe(_n8n_target(fake), ctx())
    assert result.status is Status.CRITICAL
    assert "not ready" in result.summary


def test_n8n_down_stops_after_liveness() -> None:
    with N8nFake(API_KEY) as fake:
        fake.fault = Fault.REFUSED
        result = n8n.probe(_n8n_target(fake), ctx())
    assert result.status is Status.CRITICAL
    assert [check.name for check in result.checks] == ["process"]
    assert "docker logs" in result.remediation


def test_n8n_seed_workflow_inactive_or_missing() -> None:
    state = FakeState()
    state.workflows_list = [Workflow("Heartbeat", False)]
    with N8nFake(API_KEY) as fake:
        result = n8n.probe(_n8n_target(fake, state=state, seed_workflows=("Heartbeat", "Coda sync")), ctx())
    assert result.status is Status.CRITICAL
    assert "seed workflows missing: Coda sync" in result.summary
    assert "seed workflows inactive: Heartbeat" in result.summary


def test_n8n_state_comes_from_the_database_not_the_public_api() -> None:
    """No API key anywhere: the fake's public API refuses every request, and the checks still report."""
    with N8nFake("a-key-nobody-has") as fake:
        result = n8n.probe(_n8n_target(fake), ctx())
    assert result.status is Status.OK, result
    assert {check.name for check in result.checks} >= {"workflows", "executions"}
    assert not hasattr(n8n.N8nTarget(url="http://n8n"), "api_key")


def test_n8n_without_a_reader_skips_only_the_state_checks() -> None:
    with N8nFake(API_KEY) as fake:
        result = n8n.probe(_n8n_target(fake, state=None), ctx())
    assert not {"workflows", "executions"} & {check.name for check in result.checks}


@pytest.mark.parametrize(
    ("error", "status", "says"),
    [
        (psycopg.errors.InsufficientPrivilege("permission denied for table workflow_entity"), "critical", "privilege"),
        (psycopg.errors.UndefinedTable('relation "workflow_entity" does not exist'), "critical", "tables"),
        (psycopg.OperationalError('password authentication failed for user "kaizenity_n8n_reader"'), "critical", ""),
        (psycopg.OperationalError("connection refused"), "unknown", ""),
    ],
)
def test_n8n_reader_errors_name_the_cause_and_the_fix(error: Exception, status: str, says: str) -> None:
    state = FakeState()
    state.error = error
    with N8nFake(API_KEY) as fake:
        result = n8n.probe(_n8n_target(fake, state=state), ctx())
    findings = {check.name: check for check in result.checks}
    assert findings["workflows"].status is Status[status.upper()], findings["workflows"]
    assert findings["executions"].status is Status[status.upper()]
    assert says in findings["workflows"].text
    assert "kaizenity workflows seed" in result.remediation


def test_n8n_failed_executions_in_window() -> None:
    now = datetime.now(UTC)
    state = FakeState()
    state.failed = [
        FailedExecution("wf1", now - timedelta(minutes=5)),
        FailedExecution("wf1", now - timedelta(hours=5)),
    ]
    with N8nFake(API_KEY) as fake:
        result = n8n.probe(_n8n_target(fake, state=state), ctx())
    assert result.status is Status.WARNING
    assert "1 failed executions in the last 60 min (workflows wf1)" in result.summary
    assert state.asked_since is not None
    assert now - state.asked_since >= timedelta(minutes=59)


def test_n8n_failed_executions_critical_at_the_threshold() -> None:
    state = FakeState()
    state.failed = [FailedExecution(f"wf{n}", None) for n in range(10)]
    with N8nFake(API_KEY) as fake:
        result = n8n.probe(_n8n_target(fake, state=state), ctx())
    assert result.status is Status.CRITICAL
    assert "10 failed executions in the last 60 min" in result.summary


@pytest.mark.parametrize(
    ("age_minutes", "status"), [(None, Status.CRITICAL), (5, Status.OK), (30, Status.WARNING), (90, Status.CRITICAL)]
)
def test_n8n_heartbeat_age(age_minutes: float | None, status: Status) -> None:
    beat = None if age_minutes is None else datetime.now(UTC) - timedelta(minutes=age_minutes)
    with N8nFake(API_KEY) as fake:
        result = n8n.probe(_n8n_target(fake, state=None, heartbeat=lambda budget: beat), ctx())
    assert result.status is status, result


def test_n8n_heartbeat_source_failure_is_unknown() -> None:
    def broken(budget: float) -> datetime | None:
        raise RuntimeError("relation ops.heartbeats does not exist")

    with N8nFake(API_KEY) as fake:
        result = n8n.probe(_n8n_target(fake, state=None, heartbeat=broken), ctx())
    assert result.status is Status.UNKNOWN
    assert "ops.heartbeats" in result.summary


# --- gateway ------------------------------------------------------------------------------------------------


def _gateway(fake: N8nFake, **overrides: object) -> gateway.GatewayTarget:
    return gateway.GatewayTarget(url=fake.base_url, **overrides)  # type: ignore[arg-type]


def test_gateway_healthy_over_http() -> None:
    with N8nFake(API_KEY, gateway=True) as fake:
        result = gateway.probe(_gateway(fake), ctx())
    assert result.status is Status.OK, result


def test_gateway_open_editor_is_critical() -> None:
    with N8nFake(API_KEY, gateway=False) as fake:
        result = gateway.probe(_gateway(fake), ctx())
    assert result.status is Status.CRITICAL
    assert "editor is OPEN" in result.summary


def test_gateway_without_n8n_behind_it() -> None:
    with N8nFake(API_KEY, gateway=True) as fake:
        fake.upstream_down = True
        result = gateway.probe(_gateway(fake), ctx())
    assert result.status is Status.CRITICAL
    assert "webhook route does not reach n8n (HTTP 502" in result.summary


def test_gateway_404_not_from_n8n_is_a_warning() -> None:
    with N8nFake(API_KEY, gateway=True) as fake:
        fake.webhook_route = False
        result = gateway.probe(_gateway(fake), ctx())
    assert result.status is Status.WARNING
    assert "not n8n's" in result.summary


def test_gateway_unreachable() -> None:
    with N8nFake(API_KEY, gateway=True) as fake:
        fake.fault = Fault.REFUSED
        result = gateway.probe(_gateway(fake), ctx())
    assert result.status is Status.CRITICAL
    assert "cannot connect to the gateway" in result.summary


def _certificate(tmp_path: Path, days: int, issuer: str) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", str(days), "-subj", f"/CN={issuer}", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize(("days", "status"), [(90, Status.OK), (14, Status.WARNING), (3, Status.CRITICAL)])
def test_gateway_certificate_days_left(tmp_path: Path, days: int, status: Status) -> None:
    cert, key = _certificate(tmp_path, days, "Kaizenity Test CA")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with N8nFake(API_KEY, gateway=True, tls=tls) as fake:
        result = gateway.probe(_gateway(fake, ca_file=str(cert)), ctx(2.0))
    assert result.status is status, result
    assert any(m.name == "cert_expiry" for m in result.measurements)


def test_gateway_internal_ca_is_judged_in_hours(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path, 1, "Caddy Local Authority - ECC Intermediate")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with N8nFake(API_KEY, gateway=True, tls=tls) as fake:
        result = gateway.probe(_gateway(fake), ctx(2.0))
    assert result.status is Status.OK, result
    assert "internal-CA certificate" in result.summary


def test_x509_parser_reads_validity(tmp_path: Path) -> None:
    cert, _ = _certificate(tmp_path, 30, "Parser Test")
    info = parse_certificate(ssl.PEM_cert_to_DER_cert(cert.read_text()))
    assert info.issuer == "CN=Parser Test"
    assert (info.not_after - info.not_before).days == 30
    assert info.not_after > datetime.now(UTC) + timedelta(days=29)


# --- runner -------------------------------------------------------------------------------------------------


def _sleeper(seconds: float) -> Planned[float]:
    def probe(target: float, context: ProbeContext) -> ProbeResult:
        time.sleep(target)
        return ProbeResult("x", Status.OK, f"slept {target}")

    return Planned(f"sleep{seconds}", probe, seconds, timeout=1.0)


def test_probes_run_in_parallel() -> None:
    started = time.monotonic()
    report = run(Plan((_sleeper(0.3), _sleeper(0.3), _sleeper(0.3))))
    assert time.monotonic() - started < 0.5
    assert report.status is Status.OK


def test_a_hung_probe_is_abandoned_at_its_timeout() -> None:
    started = time.monotonic()
    report = run(Plan((_sleeper(0.1), _sleeper(10))))
    assert time.monotonic() - started < 1.0 + GRACE_SECONDS + 0.2
    hung = report.results[1]
    assert hung.status is Status.CRITICAL
    assert "no answer within the 1 s timeout" in hung.summary


def test_a_crashing_probe_is_unknown_and_redacted() -> None:
    def crash(target: str, context: ProbeContext) -> ProbeResult:
        raise RuntimeError(f"boom with {target}")

    plan = Plan((Planned("coda", crash, "top-secret-value"),), redactor=Redactor(["top-secret-value"]))
    result = run(plan).results[0]
    assert result.status is Status.UNKNOWN
    assert "top-secret-value" not in result.summary
    assert "probe crashed" in result.summary
