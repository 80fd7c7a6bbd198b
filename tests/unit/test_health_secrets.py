"""No configured secret appears in any output format, whatever fault the probes meet."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from healthchecks.formats import FORMATS, render
from healthchecks.plan import NotConfigured
from healthchecks.redaction import RedactingFilter, Redactor
from healthchecks.report import Report
from healthchecks.result import ProbeResult
from tests.fakes.server import Fault
from tests.unit.health_support import EXTERNAL_PROBES, SECRETS, context

DSN_PASSWORD = "pg-Secret-Password-987"


def _spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret)}


def _run_all(fault: Fault) -> list[ProbeResult]:
    results = []
    for kind in EXTERNAL_PROBES:
        with kind.fake() as fake:
            fake.fault = fault
            results.append(kind.probe(kind.target(fake), context(timeout=0.5, retries=1)))
    return results


@pytest.mark.parametrize("fault", list(Fault), ids=lambda fault: fault.value)
def test_no_secret_in_any_format(fault: Fault) -> None:
    redactor = Redactor([*SECRETS, DSN_PASSWORD])
    results = _run_all(fault)
    report = Report(
        tuple(results),
        (NotConfigured("database", ("KAIZENITY_DATABASE_URL / database.url",), "PostgreSQL"),),
        datetime.now(UTC),
        1.0,
    )
    for fmt in FORMATS:
        for color in (False, True):
            text = render(report, fmt, redactor, color)
            for secret in (*SECRETS, DSN_PASSWORD):
                for spelling in _spellings(secret):
                    assert spelling not in text, f"{fmt}: leaked {secret[:6]}... in fault {fault.value}"


def test_secrets_in_summaries_and_exceptions_are_masked() -> None:
    token = SECRETS[1]
    leaky = ProbeResult(
        "telegram",
        __import__("healthchecks.result", fromlist=["Status"]).Status.CRITICAL,
        f"GET https://api.telegram.org/bot{token}/getMe failed; dsn postgresql://app:{DSN_PASSWORD}@db/x",
        f"Authorization: Bearer {SECRETS[0]}",
    )
    report = Report((leaky,), (), datetime.now(UTC), 0.1)
    redactor = Redactor([DSN_PASSWORD, SECRETS[0]])  # the Telegram token itself is not registered:
    for fmt in FORMATS:  # the pattern layer must still catch it in the URL path
        text = render(report, fmt, redactor, False)
        assert token not in text
        assert DSN_PASSWORD not in text
        assert SECRETS[0] not in text


def test_patterns_catch_unregistered_credentials() -> None:
    redactor = Redactor()
    text = redactor(
        "bot123:ABCdef_ghi/getMe Bearer abcdefghijk password=hunter22 postgresql://u:pw12345@h/db xoxb-12345-abcdef"
    )
    for leaked in ("ABCdef_ghi", "abcdefghijk", "hunter22", "pw12345", "xoxb-12345"):
        assert leaked not in text


def test_redacting_filter_masks_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("healthchecks.test.leak")
    logger.addFilter(RedactingFilter(Redactor(SECRETS)))
    with caplog.at_level(logging.INFO, logger="healthchecks.test.leak"):
        logger.info("HTTP Request: GET %s", f"https://api.telegram.org/bot{SECRETS[1]}/getMe")
    assert SECRETS[1] not in caplog.text
    assert "getMe" in caplog.text
