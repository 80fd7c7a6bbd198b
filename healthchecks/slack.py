"""Slack: ``auth.test`` says whether the bot token still works.

Slack reports failures as HTTP 200 with ``{"ok": false, "error": "invalid_auth"}``, so the status code
alone would call a revoked token healthy; the body decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from healthchecks.context import ProbeContext
from healthchecks.httpclient import Service, fetch, generic_problem, json_object, make_client
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

DEFAULT_BASE_URL = "https://slack.com/api"
SERVICE = Service("Slack", "SLACK_BOT_TOKEN", "SLACK_API_BASE_URL", "https://slack-status.com")
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission"}
)


@dataclass(frozen=True)
class SlackTarget:
    """The Slack bot token the notification workflows use."""

    token: str
    base_url: str = DEFAULT_BASE_URL


def probe(target: SlackTarget, ctx: ProbeContext) -> ProbeResult:
    """POST auth.test with the token as a Bearer header (never as a form field: forms end up in logs)."""
    builder = ResultBuilder("slack")
    headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
    with make_client(headers) as client:
        try:
            reply = fetch(client, "POST", f"{target.base_url}/auth.test", ctx, SERVICE)
            problem = generic_problem(reply, SERVICE, "token")
            if problem is not None:
                raise problem
            body = json_object(reply, SERVICE, "token")
            builder.measure(Measurement("latency", round(reply.latency, 4), Unit.SECONDS, minimum=0))
            _judge(body, builder)
        except Problem as problem:
            problem.record(builder)
    return builder.build()


def _judge(body: dict[str, object], builder: ResultBuilder) -> None:
    if body.get("ok") is True:
        builder.add("token", Status.OK, f"token valid ({body.get('user', '?')} in {body.get('team', '?')})")
        return
    error = str(body.get("error") or "unknown_error")
    if error in TOKEN_ERRORS:
        builder.add(
            "token",
            Status.CRITICAL,
            f"Slack rejected the token: {error}",
            "Reinstall the Slack app or issue a new bot token (xoxb-...) and update SLACK_BOT_TOKEN and the "
            "n8n Slack credential.",
        )
        return
    builder.add(
        "token",
        Status.CRITICAL if error != "ratelimited" else Status.WARNING,
        f"Slack auth.test failed: {error}",
        "Look the error code up at https://api.slack.com/methods/auth.test and fix the app or token.",
    )
