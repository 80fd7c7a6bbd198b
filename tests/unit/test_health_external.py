"""The SaaS probes (Coda, Telegram, Slack, WhatsApp) against local fakes of their documented APIs, every fault.

The fakes are real HTTP servers on 127.0.0.1 answering in each API's own shapes (tests/fakes/); the probes
talk to them over the network exactly as they talk to the real services.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from healthchecks.config import build_plan
from healthchecks.formats import render
from healthchecks.report import Report
from healthchecks.result import Status
from healthchecks.runner import run
from kaizenity.cli import main
from tests.fakes.coda import CodaFake
from tests.fakes.server import FAULTS, FakeApi, Fault
from tests.fakes.slack import SlackFake
from tests.fakes.telegram import TelegramFake
from tests.fakes.whatsapp import WhatsAppFake

TOKENS = {
    "coda": "coda-secret-token-3f9a1c",
    "telegram": "7700112233:AAtelegram-secret-8b2e",
    "slack": "xoxb-slack-secret-51c0d",
    "whatsapp": "EAAGwhatsapp-secret-e7d4",
}
FAKES = {"coda": CodaFake, "telegram": TelegramFake, "slack": SlackFake, "whatsapp": WhatsAppFake}
TIMEOUT = 0.8

EXPECTED = {
    Fault.NONE: Status.OK,
    Fault.HANG: Status.CRITICAL,
    Fault.REFUSED: Status.CRITICAL,
    Fault.UNAUTHORIZED: Status.CRITICAL,
    Fault.FORBIDDEN: Status.CRITICAL,
    Fault.NOT_FOUND: Status.CRITICAL,
    Fault.RATE_LIMITED: Status.WARNING,  # never "down": the state was simply not verified this time
    Fault.SERVER_ERROR: Status.CRITICAL,
    Fault.BAD_GATEWAY: Status.CRITICAL,
    Fault.MALFORMED_JSON: Status.UNKNOWN,
    Fault.WRONG_CONTENT_TYPE: Status.UNKNOWN,
}


def section(probe: str, fake: FakeApi, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"token": TOKENS[probe], "base_url": fake.base_url, "timeout": TIMEOUT, **extra}
    if probe == "coda":
        values["doc_id"] = "AbCDeFGH"
    if probe == "whatsapp":
        values["phone_number_id"] = "106540352242922"
    if probe == "telegram":
        values.setdefault("webhook_url", "https://ops.example.com/webhook/telegram")
    return values


def run_probe(probe: str, fake: FakeApi, **extra: Any) -> tuple[Report, float, Any]:
    plan = build_plan({probe: section(probe, fake, **extra)}).select([probe], [])
    started = time.monotonic()
    report = run(plan)
    return report, time.monotonic() - started, plan


@pytest.fixture(params=sorted(FAKES))
def probe_and_fake(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeApi]]:
    probe = str(request.param)
    with FAKES[probe](TOKENS[probe]) as fake:
        yield probe, fake


@pytest.mark.parametrize("fault", [Fault.NONE, *FAULTS], ids=lambda f: f.value)
def test_each_fault_gives_the_right_status_within_the_timeout(
    probe_and_fake: tuple[str, FakeApi], fault: Fault
) -> None:
    probe, fake = probe_and_fake
    fake.fault = fault
    report, elapsed, plan = run_probe(probe, fake)
    (result,) = report.results
    assert result.status is EXPECTED[fault], result.summary
    assert elapsed < TIMEOUT + 0.5, f"{probe} took {elapsed:.2f} s under {fault.value}"
    if fault is not Fault.NONE:
        assert result.remediation, "every failure says what to do"
    for fmt in ("table", "json", "prometheus", "nagios"):
        text = render(report, fmt, plan.redactor, color=False)
        assert TOKENS[probe] not in text, f"{probe} token leaked in {fmt} output under {fault.value}"
        assert TOKENS[probe].split(":")[-1] not in text


def test_429_reports_retry_after(probe_and_fake: tuple[str, FakeApi]) -> None:
    probe, fake = probe_and_fake
    fake.fault, fake.retry_after = Fault.RATE_LIMITED, 17
    report, _, _ = run_probe(probe, fake)
    assert report.results[0].status is Status.WARNING
    if probe != "whatsapp":  # Graph API signals throttling with error code 4 in the body, not Retry-After
        assert "17" in report.results[0].summary


def test_transient_server_error_is_retried(probe_and_fake: tuple[str, FakeApi]) -> None:
    probe, fake = probe_and_fake
    fake.fault, fake.fault_count = Fault.BAD_GATEWAY, 1
    report, _, _ = run_probe(probe, fake)
    assert report.results[0].status is Status.OK
    assert len(fake.requests) >= 2


def test_client_errors_are_not_retried(probe_and_fake: tuple[str, FakeApi]) -> None:
    probe, fake = probe_and_fake
    fake.fault = Fault.UNAUTHORIZED
    run_probe(probe, fake)
    assert len(fake.requests) == 1, "a 401 is an answer, not a transient failure"


def test_telegram_webhook_pointing_elsewhere_is_critical() -> None:
    with TelegramFake(TOKENS["telegram"], webhook_url="https://old-host.example.com/hook") as fake:
        report, _, _ = run_probe("telegram", fake)
    assert report.results[0].status is Status.CRITICAL
    assert "old-host.example.com" in report.results[0].summary


def test_telegram_backlog_and_recent_delivery_errors() -> None:
    with TelegramFake(TOKENS["telegram"]) as fake:
        fake.webhook["pending_update_count"] = 40
        report, _, _ = run_probe("telegram", fake)
        assert report.results[0].status is Status.WARNING
        recent = int((datetime.now(UTC) - timedelta(minutes=2)).timestamp())
        fake.webhook.update(pending_update_count=250, last_error_date=recent, last_error_message="Connection timed out")
        report, _, _ = run_probe("telegram", fake)
    assert report.results[0].status is Status.CRITICAL
    assert "Connection timed out" in report.results[0].summary


def test_coda_missing_required_table_is_critical() -> None:
    with CodaFake(TOKENS["coda"], tables=("Leads",)) as fake:
        report, _, _ = run_probe("coda", fake, required_tables="Leads,Tasks")
    assert report.results[0].status is Status.CRITICAL
    assert "Tasks" in report.results[0].summary


def test_prometheus_output_parses_with_the_client_library() -> None:
    with TelegramFake(TOKENS["telegram"]) as telegram, SlackFake(TOKENS["slack"]) as slack:
        slack.fault = Fault.SERVER_ERROR
        plan = build_plan({"telegram": section("telegram", telegram), "slack": section("slack", slack)})
        report = run(plan)
    text = render(report, "prometheus", plan.redactor, color=False)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    status_samples = [s for f in families.values() for s in f.samples if "status" in s.name]
    assert {s.labels.get("probe") for s in status_samples} >= {"telegram", "slack"}
    assert len(families) >= 3


def test_nagios_output_is_one_status_line_with_perfdata() -> None:
    with SlackFake(TOKENS["slack"]) as fake:
        report, _, plan = run_probe("slack", fake)
    first = render(report, "nagios", plan.redactor, color=False).splitlines()[0]
    assert first.startswith("OK")
    assert " | " in first
    assert "latency" in first


def test_json_output_carries_status_values_and_remediation() -> None:
    with SlackFake(TOKENS["slack"]) as fake:
        fake.fault = Fault.UNAUTHORIZED
        report, _, plan = run_probe("slack", fake)
    data = json.loads(render(report, "json", plan.redactor, color=False))
    text = json.dumps(data)
    assert "CRITICAL" in text
    assert "slack" in text
    assert TOKENS["slack"] not in text


@pytest.mark.parametrize(
    ("fault", "code"), [(Fault.NONE, 0), (Fault.RATE_LIMITED, 1), (Fault.UNAUTHORIZED, 2), (Fault.MALFORMED_JSON, 3)]
)
def test_cli_exit_codes_follow_nagios(fault: Fault, code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    with SlackFake(TOKENS["slack"]) as fake:
        fake.fault = fault
        env = {"SLACK_BOT_TOKEN": TOKENS["slack"], "SLACK_API_BASE_URL": fake.base_url}
        for variable in ("KAIZENITY_DATABASE_URL", "KAIZENITY_N8N_URL", "KAIZENITY_GATEWAY_URL", "CODA_API_TOKEN"):
            monkeypatch.delenv(variable, raising=False)
        result = CliRunner().invoke(main, ["health", "--format", "nagios", "--only", "slack"], env=env)
    assert result.exit_code == code, result.output
    assert TOKENS["slack"] not in result.output


def test_cli_lists_what_is_not_configured_and_which_setting_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("KAIZENITY_DATABASE_URL", "KAIZENITY_N8N_URL", "KAIZENITY_GATEWAY_URL", "CODA_API_TOKEN",
                     "TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "WHATSAPP_TOKEN"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
    with TelegramFake(TOKENS["telegram"]) as fake:
        env = {"TELEGRAM_BOT_TOKEN": TOKENS["telegram"], "TELEGRAM_API_BASE_URL": fake.base_url,
               "TELEGRAM_WEBHOOK_URL": "https://ops.example.com/webhook/telegram"}  # fmt: skip
        result = CliRunner().invoke(main, ["health", "--skip", "slack"], env=env)
    assert result.exit_code == 0, result.output
    assert "CODA_API_TOKEN" in result.output
    assert "WHATSAPP_PHONE_NUMBER_ID" in result.output
    assert "slack" not in result.output.split("Not configured")[-1], "--skip removes it from the report"
    assert TOKENS["telegram"] not in result.output
