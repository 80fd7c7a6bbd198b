"""The probes agree with the real services on cases that used to be OK while broken or CRITICAL while fine.

Each case is a state the real API documents (see the fakes' docstrings for the sources); each failed before the
probe learned it.
"""

from __future__ import annotations

import pytest

from healthchecks import coda, slack, whatsapp
from healthchecks.result import ProbeResult, Status
from tests.fakes.coda import CodaFake
from tests.fakes.slack import SlackFake
from tests.fakes.whatsapp import WhatsAppFake
from tests.unit.health_support import CODA_TOKEN, SLACK_TOKEN, WHATSAPP_TOKEN, context

SCOPED_TOKEN = "coda-table-scoped-token-5678"


def _whatsapp(fake: WhatsAppFake) -> ProbeResult:
    target = whatsapp.WhatsAppTarget(WHATSAPP_TOKEN, fake.phone_number_id, fake.base_url, fake.version)
    return whatsapp.probe(target, context())


@pytest.mark.parametrize(
    ("status", "can_send", "expected"),
    [
        ("RESTRICTED", "LIMITED", Status.CRITICAL),
        ("BANNED", "BLOCKED", Status.CRITICAL),
        ("CONNECTED", "BLOCKED", Status.CRITICAL),
        ("FLAGGED", "AVAILABLE", Status.WARNING),
        ("CONNECTED", "LIMITED", Status.WARNING),
        ("CONNECTED", "AVAILABLE", Status.OK),
    ],
)
def test_whatsapp_number_that_cannot_send_is_not_ok_even_with_green_quality(
    status: str, can_send: str, expected: Status
) -> None:
    with WhatsAppFake(WHATSAPP_TOKEN) as fake:
        fake.status, fake.can_send_message = status, can_send
        fake.health_errors = [{"error_code": 141010, "error_description": "Display name not approved"}]
        result = _whatsapp(fake)
    assert fake.quality == "GREEN"
    assert result.status is expected, result
    if expected is not Status.OK:
        assert status in result.summary or can_send in result.summary
        assert "141010" in result.summary, "Meta's own reason is shown"
        assert "WhatsApp Manager" in result.remediation


@pytest.mark.parametrize(("code", "expected"), [(17, Status.WARNING), (341, Status.WARNING), (131031, Status.CRITICAL)])
def test_whatsapp_graph_codes(code: int, expected: Status) -> None:
    with WhatsAppFake(WHATSAPP_TOKEN) as fake:
        fake.error_code = code
        result = _whatsapp(fake)
    assert result.status is expected, result
    assert f"code {code}" in result.summary


def test_slack_token_without_a_required_scope_is_critical() -> None:
    with SlackFake(SLACK_TOKEN, scopes=("channels:read", "users:read")) as fake:
        result = slack.probe(slack.SlackTarget(SLACK_TOKEN, fake.base_url), context())
        assert result.status is Status.CRITICAL, result
        assert "chat:write" in result.summary
        assert "reinstall" in result.remediation
        fake.scopes = ("chat:write", "users:read")
        assert slack.probe(slack.SlackTarget(SLACK_TOKEN, fake.base_url), context()).status is Status.OK
        needs_more = slack.SlackTarget(SLACK_TOKEN, fake.base_url, ("chat:write", "im:write"))
        assert "im:write" in slack.probe(needs_more, context()).summary


@pytest.mark.parametrize("error", ["request_timeout", "fatal_error", "service_unavailable", "internal_error"])
def test_slack_transient_ok_false_is_a_warning(error: str) -> None:
    with SlackFake(SLACK_TOKEN) as fake:
        fake.ok_false_error = error
        result = slack.probe(slack.SlackTarget(SLACK_TOKEN, fake.base_url), context())
    assert result.status is Status.WARNING, result
    assert error in result.summary


def test_coda_doc_over_the_api_size_limit_is_critical() -> None:
    with CodaFake(CODA_TOKEN) as fake:
        fake.over_api_size_limit = True
        result = coda.probe(coda.CodaTarget(CODA_TOKEN, fake.doc_id, fake.base_url, ("Leads",)), context())
    assert result.status is Status.CRITICAL, result
    assert "overApiSizeLimit" in result.summary


def test_coda_table_scoped_token_is_enough_and_says_what_it_could_not_check() -> None:
    with CodaFake(CODA_TOKEN) as fake:
        fake.add_grid("grid-leads", "Leads", {"c-name": "Name"})
        fake.add_row("grid-leads", {"c-name": "Ada"})
        fake.scoped_tokens[SCOPED_TOKEN] = {"grid-leads"}
        result = coda.probe(coda.CodaTarget(SCOPED_TOKEN, fake.doc_id, fake.base_url, ("grid-leads",)), context())
        assert result.status is Status.OK, result
        assert any("doc-level checks not possible with a table-scoped token" in c.text for c in result.checks)
        other = coda.CodaTarget(SCOPED_TOKEN, fake.doc_id, fake.base_url, ("grid-leads", "grid-secret"))
        fake.add_grid("grid-secret", "Secret", {"c-x": "X"})
        denied = coda.probe(other, context())
    assert denied.status is Status.CRITICAL, "a table the token may not read is still a real finding"
