"""Slack: ``auth.test`` says whether the bot token still works.

Slack reports failures as HTTP 200 with ``{"ok": false, "error": "invalid_auth"}``, so the status code
alone would call a revoked token healthy; the body decides. Two more things the body and headers say:
- ``ok:false`` with ``request_timeout``, ``fatal_error``, ``service_unavailable``, ``internal_error`` or
  ``ratelimited`` is Slack's side failing for a moment (https://api.slack.com/methods/chat.postMessage#errors):
  WARNING, the token was not judged.
- the ``X-OAuth-Scopes`` header lists the scopes the token was granted
  (https://api.slack.com/authentication/oauth-v2): a valid token without ``chat:write`` cannot send a single
  notification, so a missing required scope is CRITICAL.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from healthchecks.context import ProbeContext
from healthchecks.httpclient import Service, fetch, generic_problem, json_object, make_client
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

DEFAULT_BASE_URL = "https://slack.com/api"
SERVICE = Service("Slack", "SLACK_BOT_TOKEN", "SLACK_API_BASE_URL", "https://slack-status.com")
TRANSIENT_ERRORS = frozenset({"request_timeout", "fatal_error", "service_unavailable", "internal_error", "ratelimited"})
DEFAULT_REQUIRED_SCOPES = ("chat:write",)
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission"}
)


@dataclass(frozen=True)
class SlackTarget:
    """The Slack bot token the notification workflows use."""

    token: str
    base_url: str = DEFAULT_BASE_URL
    required_scopes: tuple[str, ...] = DEFAULT_REQUIRED_SCOPES


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
            if body.get("ok") is True:
                _judge_scopes(reply.headers, target.required_scopes, builder)
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
    if error in TRANSIENT_ERRORS:
        builder.add(
            "token",
            Status.WARNING,
            f"Slack answered ok:false {error} (a transient failure on Slack's side); token not verified",
            "Nothing to fix here if it clears on the next run; if it persists check https://slack-status.com.",
        )
        return
    builder.add(
        "token",
        Status.CRITICAL,
        f"Slack auth.test failed: {error}",
        "Look the error code up at https://api.slack.com/methods/auth.test and fix the app or token.",
    )


def _judge_scopes(headers: httpx.Headers, required: tuple[str, ...], builder: ResultBuilder) -> None:
    """Compare the granted scopes (X-OAuth-Scopes) with the ones the workflows need."""
    if not required:
        return
    raw = headers.get("x-oauth-scopes")
    if raw is None:
        builder.add(
            "scopes",
            Status.WARNING,
            "Slack sent no X-OAuth-Scopes header: scopes not verified",
            "Check SLACK_API_BASE_URL points at Slack itself (a proxy may strip the header).",
        )
        return
    granted = {scope.strip() for scope in raw.split(",") if scope.strip()}
    missing = [scope for scope in required if scope not in granted]
    if missing:
        builder.add(
            "scopes",
            Status.CRITICAL,
            f"Slack token lacks required scope(s): {', '.join(missing)}",
            "Add the scope(s) under OAuth & Permissions in the Slack app, reinstall it to the workspace and update "
            "SLACK_BOT_TOKEN and the n8n Slack credential with the new token.",
        )
    else:
        builder.add("scopes", Status.OK, f"required scopes granted ({', '.join(required)})")
