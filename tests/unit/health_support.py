"""Shared set-up of the health-probe tests: secrets, fake APIs and the probe targets pointing at them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from healthchecks import coda, slack, telegram, whatsapp
from healthchecks.context import ProbeContext
from healthchecks.redaction import Redactor
from healthchecks.result import ProbeResult
from tests.fakes.coda import CodaFake
from tests.fakes.server import FakeApi
from tests.fakes.slack import SlackFake
from tests.fakes.telegram import TelegramFake
from tests.fakes.whatsapp import WhatsAppFake

CODA_TOKEN = "coda-secret-4f1c2d3e4b5a69788796a5b4"
TELEGRAM_TOKEN = "123456789:AAHsecretTelegramToken_abcdefghijklm"
SLACK_TOKEN = "xoxb-1111-2222-slacksecretvalue"
WHATSAPP_TOKEN = "EAAGwhatsappSecretToken0123456789"
SECRETS = (CODA_TOKEN, TELEGRAM_TOKEN, SLACK_TOKEN, WHATSAPP_TOKEN)
WEBHOOK_URL = "https://ops.example.com/webhook/telegram"
TIMEOUT = 1.0


@dataclass(frozen=True)
class ExternalProbe:
    """One external probe kind: how to start its fake, aim the probe at it, and run it."""

    name: str
    fake: Callable[[], FakeApi]
    target: Callable[[Any], Any]
    probe: Callable[[Any, ProbeContext], ProbeResult]


EXTERNAL_PROBES = (
    ExternalProbe(
        "coda",
        lambda: CodaFake(CODA_TOKEN),
        lambda fake: coda.CodaTarget(CODA_TOKEN, fake.doc_id, fake.base_url, ("Leads", "Tasks")),
        coda.probe,
    ),
    ExternalProbe(
        "telegram",
        lambda: TelegramFake(TELEGRAM_TOKEN, WEBHOOK_URL),
        lambda fake: telegram.TelegramTarget(TELEGRAM_TOKEN, fake.base_url, WEBHOOK_URL),
        telegram.probe,
    ),
    ExternalProbe(
        "slack",
        lambda: SlackFake(SLACK_TOKEN),
        lambda fake: slack.SlackTarget(SLACK_TOKEN, fake.base_url),
        slack.probe,
    ),
    ExternalProbe(
        "whatsapp",
        lambda: WhatsAppFake(WHATSAPP_TOKEN),
        lambda fake: whatsapp.WhatsAppTarget(WHATSAPP_TOKEN, fake.phone_number_id, fake.base_url, fake.version),
        whatsapp.probe,
    ),
)


def context(timeout: float = TIMEOUT, retries: int = 2) -> ProbeContext:
    """A fresh per-run context (its deadline starts now) that knows every test secret."""
    return ProbeContext(timeout=timeout, retries=retries, backoff=0.05, redactor=Redactor(SECRETS))
