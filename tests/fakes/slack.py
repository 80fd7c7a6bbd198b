"""Slack Web API auth.test: HTTP 200 with ok:false for auth failures, 429 with Retry-After."""

from __future__ import annotations

from tests.fakes.server import FakeApi, Request, Response

ERRORS = {401: "invalid_auth", 403: "account_inactive", 404: "unknown_method", 500: "fatal_error"}


class SlackFake(FakeApi):
    """A workspace accepting one bot token."""

    prefix = "/api"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

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
        return Response(200, body)
