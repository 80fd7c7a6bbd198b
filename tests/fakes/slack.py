"""Slack Web API auth.test: HTTP 200 with ok:false for auth failures, 429 with Retry-After.

Contract rules and their sources:
- Failures are HTTP 200 with ``{"ok": false, "error": "..."}``; 429 with ``Retry-After``
  (https://api.slack.com/methods/auth.test, https://api.slack.com/docs/rate-limits).
- Every Web API answer carries the token's granted scopes in the ``X-OAuth-Scopes`` header, comma-separated
  (https://api.slack.com/authentication/oauth-v2, "you can see which scopes a token has ... X-OAuth-Scopes").
- Transient server-side errors also arrive as HTTP 200 ``ok:false``: ``request_timeout``, ``fatal_error``,
  ``service_unavailable``, ``internal_error`` (the "Errors" table common to every method, e.g.
  https://api.slack.com/methods/chat.postMessage#errors).
"""

from __future__ import annotations

from tests.fakes.server import FakeApi, Request, Response

ERRORS = {401: "invalid_auth", 403: "account_inactive", 404: "unknown_method", 500: "fatal_error"}
DEFAULT_SCOPES = ("chat:write", "channels:read", "users:read")


class SlackFake(FakeApi):
    """A workspace accepting one bot token with ``scopes``; ``ok_false_error`` answers HTTP 200 ok:false."""

    prefix = "/api"

    def __init__(self, token: str, scopes: tuple[str, ...] = DEFAULT_SCOPES) -> None:
        super().__init__()
        self.token = token
        self.scopes = scopes
        self.ok_false_error: str | None = None

    def error(self, status: int, message: str) -> Response:
        if status in (401, 403):  # Slack reports auth failures in the body of an HTTP 200
            return Response(200, {"ok": False, "error": ERRORS[status]})
        if status == 429:
            return Response(429, {"ok": False, "error": "ratelimited"})
        return Response(status, {"ok": False, "error": ERRORS.get(status, "internal_error")})

    def route(self, request: Request) -> Response:
        if request.method != "POST" or request.path != f"{self.prefix}/auth.test":
            return self.error(404, "unknown method")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(200, {"ok": False, "error": "invalid_auth"})
        if self.ok_false_error:
            return Response(200, {"ok": False, "error": self.ok_false_error})
        body = {
            "ok": True,
            "url": "https://kaizenity.slack.com/",
            "team": "Kaizenity",
            "user": "kaizenity_bot",
            "team_id": "T12345678",
            "user_id": "U12345678",
            "bot_id": "B12345678",
            "is_enterprise_install": False,
        }
        return Response(200, body, headers={"X-OAuth-Scopes": ",".join(self.scopes)})
