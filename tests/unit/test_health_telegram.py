"""The Telegram probe's webhook findings: allowed_updates that drop needed kinds, and no secret path token shown."""

from __future__ import annotations

from healthchecks import telegram
from healthchecks.result import ProbeResult, Status
from tests.fakes.telegram import TelegramFake
from tests.unit.health_support import TELEGRAM_TOKEN, context

PATH_TOKEN = "q8Zr2Lx0aB7cYt5W"
SECRET_URL = f"https://ops.example.com/webhook/telegram/{PATH_TOKEN}"


def _probe(fake: TelegramFake, expected: str = SECRET_URL) -> ProbeResult:
    return telegram.probe(telegram.TelegramTarget(TELEGRAM_TOKEN, fake.base_url, expected), context())


def test_allowed_updates_without_callbacks_and_member_changes_warns() -> None:
    with TelegramFake(TELEGRAM_TOKEN, SECRET_URL) as fake:
        fake.webhook["allowed_updates"] = ["message", "edited_message"]
        result = _probe(fake)
    assert result.status is Status.WARNING
    assert "leaves out channel_post, edited_channel_post, callback_query, my_chat_member" in result.summary


def test_allowed_updates_absent_or_complete_is_ok() -> None:
    with TelegramFake(TELEGRAM_TOKEN, SECRET_URL) as fake:
        assert _probe(fake).status is Status.OK
        fake.webhook["allowed_updates"] = [*telegram.NEEDED_UPDATES, "business_message"]
        assert _probe(fake).status is Status.OK


def test_webhook_url_is_redacted_in_every_finding() -> None:
    with TelegramFake(TELEGRAM_TOKEN, f"https://ops.example.com/webhook/telegram/{PATH_TOKEN}x") as fake:
        mismatch = _probe(fake)
        fake.webhook["url"] = SECRET_URL
        ok = _probe(fake)
    assert mismatch.status is Status.CRITICAL
    assert "differs only in the masked secret part" in mismatch.summary
    for result in (mismatch, ok):
        assert PATH_TOKEN not in repr(result)
        assert "https://ops.example.com/webhook/telegram/***" in repr(result)


def test_redaction_keeps_words_and_masks_tokens() -> None:
    assert telegram.redact_webhook_url("https://h.example:8443/tg/AbC123?x=1") == "https://h.example:8443/tg/***"
