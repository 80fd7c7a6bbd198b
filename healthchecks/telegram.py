"""Telegram: the bot token works and Telegram can deliver updates to our webhook.

The token is part of the URL *path* (``/bot<TOKEN>/getMe``), so it ends up in any exception or log line
that mentions the URL; all error text goes through the context's redactor. A delivery error alone is a
WARNING (Telegram retries undelivered updates); a recent error while updates pile up is CRITICAL because
messages are not reaching the workflows right now.

The webhook URL carries the secret path token of the n8n route (``/webhook/telegram/<token>``): every finding
shows it through :func:`redact_webhook_url`. A webhook whose ``allowed_updates`` leaves out a kind the inbound
workflow handles (https://core.telegram.org/bots/api#setwebhook) silently drops those updates at Telegram.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from healthchecks.context import ProbeContext
from healthchecks.httpclient import Service, fetch, generic_problem, json_object, make_client
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

DEFAULT_BASE_URL = "https://api.telegram.org"
# The update kinds ops.store_telegram_update understands and acts on (migration 0008); an empty or absent
# allowed_updates means every kind except chat_member and reactions (Bot API, setWebhook), which covers them.
NEEDED_UPDATES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "my_chat_member",
)
_PLAIN_SEGMENT = re.compile(r"[a-z][a-z-]{0,19}")
SERVICE = Service("Telegram", "TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE_URL", "https://t.me/BotNews")


@dataclass(frozen=True)
class TelegramTarget:
    """The bot and the webhook it should deliver to; thresholds for backlog and recent delivery errors."""

    token: str
    base_url: str = DEFAULT_BASE_URL
    expected_webhook_url: str | None = None
    pending_warning: int = 10
    pending_critical: int = 100
    error_warning_minutes: float = 60.0
    error_critical_minutes: float = 10.0


def probe(target: TelegramTarget, ctx: ProbeContext) -> ProbeResult:
    """getMe (token), then getWebhookInfo (URL, backlog, recent delivery errors)."""
    builder = ResultBuilder("telegram")
    with make_client({"Accept": "application/json"}) as client:
        try:
            _check_token(client, target, ctx, builder)
            info, _ = _call(client, target, ctx, "getWebhookInfo", "webhook")
            _check_webhook_url(info, target, builder)
            _check_allowed_updates(info, builder)
            _check_backlog(info, target, builder)
            _check_delivery_errors(info, target, ctx, builder)
        except Problem as problem:
            problem.record(builder)
    return builder.build()


def _call(
    client: httpx.Client, target: TelegramTarget, ctx: ProbeContext, method: str, check: str
) -> tuple[dict[str, Any], float]:
    """One Bot API method: its ``result`` object and the request latency."""
    reply = fetch(client, "GET", f"{target.base_url}/bot{target.token}/{method}", ctx, SERVICE)
    not_found = "Telegram answered 404: the bot token is malformed or TELEGRAM_API_BASE_URL is wrong"
    problem = generic_problem(reply, SERVICE, check, not_found)
    if problem is not None:
        raise problem
    body = json_object(reply, SERVICE, check)
    if body.get("ok") is not True or not isinstance(body.get("result"), dict):
        raise Problem(
            check,
            Status.CRITICAL,
            f"Telegram {method} failed: {body.get('description', 'ok is not true')}",
            "Read the description; an invalid token needs a new one from @BotFather in TELEGRAM_BOT_TOKEN.",
        )
    return body["result"], reply.latency


def _check_token(client: httpx.Client, target: TelegramTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    me, latency = _call(client, target, ctx, "getMe", "token")
    builder.measure(Measurement("latency", round(latency, 4), Unit.SECONDS, minimum=0))
    name = me.get("username", "?")
    builder.add("token", Status.OK, f"bot @{name} token valid")


def redact_webhook_url(url: str) -> str:
    """The URL with every path segment that is not a plain word masked, and no query: safe to print."""
    parts = urlsplit(url)
    segments = [seg if _PLAIN_SEGMENT.fullmatch(seg) else "***" for seg in parts.path.split("/")[1:]]
    path = "/" + "/".join(segments) if segments else ""
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{path}"


def _check_webhook_url(info: dict[str, Any], target: TelegramTarget, builder: ResultBuilder) -> None:
    url = str(info.get("url") or "")
    expected = target.expected_webhook_url
    fix = (
        "Re-register the webhook with setWebhook (url = the gateway's /webhook/... route of the Telegram "
        "trigger, with its secret_token); check TELEGRAM_WEBHOOK_URL matches the n8n workflow."
    )
    if expected and url != expected:
        actual = redact_webhook_url(url) if url else "nothing (no webhook set)"
        if url and redact_webhook_url(url) == redact_webhook_url(expected):
            actual += " (differs only in the masked secret part)"
        builder.add(
            "webhook", Status.CRITICAL, f"webhook points to {actual}, expected {redact_webhook_url(expected)}", fix
        )
    elif not url:
        builder.add("webhook", Status.WARNING, "no webhook set: updates are not pushed to n8n", fix)
    else:
        builder.add("webhook", Status.OK, f"webhook set to {redact_webhook_url(url)}")


def _check_allowed_updates(info: dict[str, Any], builder: ResultBuilder) -> None:
    allowed = info.get("allowed_updates")
    if not isinstance(allowed, list) or not allowed:
        builder.add("updates", Status.OK, "webhook receives every default update kind")
        return
    missing = [kind for kind in NEEDED_UPDATES if kind not in allowed]
    if not missing:
        builder.add("updates", Status.OK, f"webhook receives {', '.join(NEEDED_UPDATES)}")
        return
    needed = ", ".join(f'"{kind}"' for kind in NEEDED_UPDATES)
    builder.add(
        "updates",
        Status.WARNING,
        f"webhook allowed_updates leaves out {', '.join(missing)}: Telegram drops those updates",
        f"Call setWebhook again with allowed_updates=[{needed}] (or an empty list for the default kinds).",
    )


def _check_backlog(info: dict[str, Any], target: TelegramTarget, builder: ResultBuilder) -> None:
    pending = _int(info.get("pending_update_count"))
    builder.measure(
        Measurement("pending_updates", pending, Unit.COUNT, target.pending_warning, target.pending_critical, 0)
    )
    fix = (
        "Updates are queueing at Telegram: check the gateway and n8n (webhook route, Telegram trigger "
        "workflow active) and the last delivery error."
    )
    if pending >= target.pending_critical:
        builder.add("backlog", Status.CRITICAL, f"{pending} updates pending delivery", fix)
    elif pending >= target.pending_warning:
        builder.add("backlog", Status.WARNING, f"{pending} updates pending delivery", fix)
    else:
        builder.add("backlog", Status.OK, f"{pending} updates pending")


def _check_delivery_errors(
    info: dict[str, Any], target: TelegramTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    last = info.get("last_error_date")
    if not isinstance(last, int | float) or last <= 0:
        builder.add("delivery", Status.OK, "no webhook delivery errors reported")
        return
    age_minutes = max(0.0, (ctx.now().timestamp() - float(last)) / 60)
    builder.measure(Measurement("last_error_age", round(age_minutes * 60, 1), Unit.SECONDS, minimum=0))
    message = str(info.get("last_error_message") or "no message")
    text = f"webhook delivery failed {age_minutes:.0f} min ago: {message}"
    fix = (
        "Telegram cannot deliver to the webhook: check the public URL resolves, the gateway certificate is "
        "publicly trusted (not `tls internal`), and the route answers 200."
    )
    pending = _int(info.get("pending_update_count"))
    if age_minutes <= target.error_critical_minutes and pending > 0:
        builder.add("delivery", Status.CRITICAL, text, fix)
    elif age_minutes <= target.error_warning_minutes:
        builder.add("delivery", Status.WARNING, text, fix)
    else:
        builder.add("delivery", Status.OK, f"last delivery error {age_minutes:.0f} min ago (old)")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0
