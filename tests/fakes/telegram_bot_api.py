"""A fake Telegram Bot API: `POST /bot<token>/<method>` with Telegram's `{"ok": ...}` envelope.

It records every call so tests can assert what n8n sent, and can be switched to fail (HTTP 500 with Telegram's
error envelope) to drive the retry and dead-letter path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


def _chat_id(value: Any) -> Any:
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else value


@dataclass
class TelegramCall:
    token: str
    method: str
    params: dict[str, Any]


@dataclass
class FakeTelegram:
    """Serve on `host` (a random port); `fail_with` set to a status makes every call fail with it."""

    host: str
    calls: list[TelegramCall] = field(default_factory=list)
    fail_with: int | None = None

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("content-type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                _, bot, method = self.path.split("?")[0].split("/", 2)
                fake.calls.append(TelegramCall(bot.removeprefix("bot"), method, params))
                if fake.fail_with:
                    self._reply(
                        fake.fail_with,
                        {"ok": False, "error_code": fake.fail_with, "description": "Internal Server Error"},
                    )
                else:
                    result = {
                        "message_id": len(fake.calls),
                        "date": 0,
                        # Chat.id is an Integer (core.telegram.org/bots/api#chat), also when the request sent
                        # it as a string: clients that decode it strictly (Alertmanager's telebot) need that.
                        "chat": {"id": _chat_id(params.get("chat_id")), "type": "private"},
                        "text": params.get("text"),
                    }
                    self._reply(200, {"ok": True, "result": result})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def sent_messages(self) -> list[TelegramCall]:
        return [c for c in self.calls if c.method == "sendMessage"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
