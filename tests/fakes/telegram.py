"""Telegram Bot API: /bot<TOKEN>/getMe and /bot<TOKEN>/getWebhookInfo with the {ok, result} envelope.

getWebhookInfo fields as documented (https://core.telegram.org/bots/api#webhookinfo): url, has_custom_certificate,
pending_update_count, ip_address, last_error_date, last_error_message, max_connections, allowed_updates (only
when setWebhook was given a non-empty list; telegram-bot-api Client.cpp JsonWebhookInfo).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeApi, Request, Response

DESCRIPTIONS = {401: "Unauthorized", 403: "Forbidden: bot was blocked by the user", 404: "Not Found"}


class TelegramFake(FakeApi):
    """A bot whose webhook state (``webhook``) tests edit directly."""

    def __init__(self, token: str, webhook_url: str = "https://ops.example.com/webhook/telegram") -> None:
        super().__init__()
        self.token = token
        self.webhook: dict[str, Any] = {
            "url": webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": 0,
            "max_connections": 40,
            "ip_address": "203.0.113.7",
        }

    def error(self, status: int, message: str) -> Response:
        if status == 429:
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {self.retry_after}",
                "parameters": {"retry_after": self.retry_after},
            }
            return Response(429, body)
        description = DESCRIPTIONS.get(status, "Internal Server Error")
        return Response(status, {"ok": False, "error_code": status, "description": description})

    def route(self, request: Request) -> Response:
        prefix = f"/bot{self.token}/"
        if not request.path.startswith("/bot"):
            return self.error(404, "not a bot path")
        if not request.path.startswith(prefix):
            return self.error(401, "wrong token")
        method = request.path.removeprefix(prefix)
        if method == "getMe":
            result: dict[str, Any] = {
                "id": int(self.token.split(":")[0]),
                "is_bot": True,
                "first_name": "Kaizenity",
                "username": "kaizenity_bot",
                "can_join_groups": True,
            }
            return Response(200, {"ok": True, "result": result})
        if method == "getWebhookInfo":
            return Response(200, {"ok": True, "result": dict(self.webhook)})
        return self.error(404, "unknown method")
