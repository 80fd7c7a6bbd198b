"""The Coda, Telegram, Slack and WhatsApp probes against local fakes of the real APIs, in every fault."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from healthchecks import coda, telegram, whatsapp
from healthchecks.result import Status
from tests.fakes.coda import CodaFake
from tests.fakes.server import Fault
from tests.fakes.telegram import TelegramFake
from tests.fakes.whatsapp import WhatsAppFake
from tests.unit.health_support import (
    CODA_TOKEN,
    EXTERNAL_PROBES,
    TELEGRAM_TOKEN,
    TIMEOUT,
    WEBHOOK_URL,
    ExternalProbe,
    context,
)

EXPECTED = {
    Fault.NONE: Status.OK,
    Fault.HANG: Status.CRITICAL,
    Fault.REFUSED: Status.CRITICAL,
    Fault.UNAUTHORIZED: Status.CRITICAL,
    Fault.FORBIDDEN: Status.CRITICAL,
    Fault.NOT_FOUND: Status.CRITICAL,
    Fault.RATE_LIMITED: Status.WARNING,
    Fault.SERVER_ERROR: Status.CRITICAL,
    Fault.BAD_GATEWAY: Status.CRITICAL,
    Fault.MALFORMED_JSON: Status.UNKNOWN,
    Fault.WRONG_CONTENT_TYPE: Status.UNKNOWN,
}
SLACK_MARGIN = 0.5  # scheduling slack over the probe's own timeout


@pytest.mark.parametrize("fault", list(Fault), ids=lambda fault: fault.value)
@pytest.mark.parametrize("kind", EXTERNAL_PROBES, ids=lambda kind: kind.name)
def test_every_fault_gives_the_right_status_within_the_timeout(kind: ExternalProbe, fault: Fault) -> None:
    with kind.fake() as fake:
        fake.fault = fault
        started = time.monotonic()
        result = kind.probe(kind.target(fake), context())
        elapsed = time.monotonic() - started
    assert result.status is EXPECTED[fault], result
    assert elapsed < TIMEOUT + SLACK_MARGIN
    assert result.summary
    if result.status is not Status.OK:
        assert result.remediation, "every non-OK finding says what to do"


@pytest.mark.parametrize("kind", EXTERNAL_PROBES, ids=lambda kind: kind.name)
def test_rate_limit_says_retry_after_and_is_never_down(kind: ExternalProbe) -> None:
    with kind.fake() as fake:
        fake.fault, fake.retry_after = Fault.RATE_LIMITED, 30
        result = kind.probe(kind.target(fake), context())
    assert result.status is Status.WARNING
    assert "429" in result.summary or "throttled" in result.summary
    assert "down" not in result.summary.lower()


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.RATE_LIMITED])
@pytest.mark.parametrize("kind", EXTERNAL_PROBES, ids=lambda kind: kind.name)
def test_a_transient_failure_is_retried_and_recovers(kind: ExternalProbe, fault: Fault) -> None:
    with kind.fake() as fake:
        fake.fault, fake.fault_count, fake.retry_after = fault, 1, 0
        result = kind.probe(kind.target(fake), context())
    assert result.status is Status.OK, result


@pytest.mark.parametrize("kind", EXTERNAL_PROBES, ids=lambda kind: kind.name)
def test_a_rejected_token_is_not_retried(kind: ExternalProbe) -> None:
    with kind.fake() as fake:
        fake.fault = Fault.UNAUTHORIZED
        kind.probe(kind.target(fake), context())
        assert len(fake.requests) == 1


def test_retries_are_bounded() -> None:
    kind = EXTERNAL_PROBES[2]  # slack: one request per attempt
    with kind.fake() as fake:
        fake.fault = Fault.SERVER_ERROR
        result = kind.probe(kind.target(fake), context(timeout=3.0, retries=2))
        assert len(fake.requests) == 3
    assert "after 3 attempt(s)" in result.summary


def test_coda_follows_table_pages_and_names_missing_tables() -> None:
    with CodaFake(CODA_TOKEN, tables=("Leads", "Tasks", "Clients")) as fake:
        target = coda.CodaTarget(CODA_TOKEN, fake.doc_id, fake.base_url, ("Clients", "Invoices"))
        result = coda.probe(target, context())
    assert result.status is Status.CRITICAL
    assert "Invoices" in result.summary
    assert "Clients" not in result.summary


def test_coda_wrong_doc_is_named() -> None:
    with CodaFake(CODA_TOKEN) as fake:
        result = coda.probe(coda.CodaTarget(CODA_TOKEN, "nope", fake.base_url), context())
    assert result.status is Status.CRITICAL
    assert "doc nope not found" in result.summary


def test_coda_wrong_token_is_critical() -> None:
    with CodaFake(CODA_TOKEN) as fake:
        result = coda.probe(coda.CodaTarget("wrong-token", fake.doc_id, fake.base_url), context())
    assert result.status is Status.CRITICAL
    assert "rejected the token" in result.summary


def _telegram(fake: TelegramFake, **overrides: object) -> telegram.TelegramTarget:
    return telegram.TelegramTarget(TELEGRAM_TOKEN, fake.base_url, WEBHOOK_URL, **overrides)  # type: ignore[arg-type]


def test_telegram_webhook_pointing_elsewhere_is_critical() -> None:
    with TelegramFake(TELEGRAM_TOKEN, "https://old.example.com/hook") as fake:
        result = telegram.probe(_telegram(fake), context())
    assert result.status is Status.CRITICAL
    assert "expected https://ops.example.com/webhook/telegram" in result.summary


def test_telegram_backlog_thresholds() -> None:
    with TelegramFake(TELEGRAM_TOKEN, WEBHOOK_URL) as fake:
        fake.webhook["pending_update_count"] = 15
        assert telegram.probe(_telegram(fake), context()).status is Status.WARNING
        fake.webhook["pending_update_count"] = 150
        assert telegram.probe(_telegram(fake), context()).status is Status.CRITICAL


def test_telegram_recent_delivery_error_with_backlog_is_critical_old_one_is_ok() -> None:
    now = datetime.now(UTC).timestamp()
    with TelegramFake(TELEGRAM_TOKEN, WEBHOOK_URL) as fake:
        fake.webhook.update(last_error_date=int(now - 60), last_error_message="Connection timed out")
        fake.webhook["pending_update_count"] = 3
        result = telegram.probe(_telegram(fake), context())
        assert result.status is Status.CRITICAL
        assert "Connection timed out" in result.summary
        fake.webhook["pending_update_count"] = 0
        assert telegram.probe(_telegram(fake), context()).status is Status.WARNING
        fake.webhook["last_error_date"] = int(now - 86400)
        assert telegram.probe(_telegram(fake), context()).status is Status.OK


def test_telegram_wrong_token_is_critical_and_redacted() -> None:
    other = "987654321:AAHanotherSecretTokenValue_zzzzzz"
    with TelegramFake(TELEGRAM_TOKEN) as fake:
        result = telegram.probe(telegram.TelegramTarget(other, fake.base_url), context())
    assert result.status is Status.CRITICAL
    assert other not in repr(result)


def test_slack_ok_false_with_http_200_is_critical() -> None:
    kind = EXTERNAL_PROBES[2]
    with kind.fake() as fake:
        result = kind.probe(type(kind.target(fake))("xoxb-wrong-token-123456", fake.base_url), context())
    assert result.status is Status.CRITICAL
    assert "invalid_auth" in result.summary


def test_whatsapp_states() -> None:
    with WhatsAppFake("tok-whatsapp-secret") as fake:
        target = whatsapp.WhatsAppTarget("tok-whatsapp-secret", fake.phone_number_id, fake.base_url, fake.version)
        assert whatsapp.probe(target, context()).status is Status.OK
        fake.quality = "RED"
        assert whatsapp.probe(target, context()).status is Status.WARNING
        fake.throughput_limited = True
        assert whatsapp.probe(target, context()).status is Status.WARNING
        expired = whatsapp.probe(whatsapp.WhatsAppTarget("expired", "1", fake.base_url, fake.version), context())
        assert expired.status is Status.CRITICAL
        assert "code 190" in expired.summary
        fake.throughput_limited = False
        unknown = whatsapp.probe(
            whatsapp.WhatsAppTarget("tok-whatsapp-secret", "42", fake.base_url, fake.version), context()
        )
        assert unknown.status is Status.CRITICAL
        assert "WHATSAPP_PHONE_NUMBER_ID" in unknown.remediation
