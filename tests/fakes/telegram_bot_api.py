"""A fake Telegram Bot API that refuses what the real one refuses: `POST /bot<token>/<method>`.

Each rule names its source, so a test that passes here passes for the reason it would pass at api.telegram.org:

- Envelope `{"ok": true, "result"}` / `{"ok": false, "error_code", "description", "parameters"}`:
  https://core.telegram.org/bots/api#making-requests.
- Error texts: telegram-bot-api `Client.cpp` `fail_query_with_error` prefixes "Bad Request: " / "Forbidden: " and
  lower-cases the first letter of td's message; td `SynchronousRequests.cpp` wraps parser errors in
  "Can't parse entities: ...", hence "Bad Request: can't parse entities: <parser error>".
- Entity parsing: td `MessageEntity.cpp` `parse_markdown` (legacy Markdown: `_ * \\` [` open an entity, no end ->
  "Can't find end of the entity starting at byte offset N"), `parse_markdown_v2` (characters
  ``_*[]()~`>#+-=|{}.!`` are reserved: "Character 'c' is reserved and must be escaped with the preceding '\\'"),
  `parse_html` ("Unsupported start tag \\"x\\" at byte offset N", "Unexpected end tag at byte offset N",
  "Unmatched end tag ...", "Can't find end of ... entity"; `&lt; &gt; &amp; &quot;` decoded).
- Length: td `MessageContent.cpp` counts `utf8_length` (code points) of the text *after* entity parsing against
  `message_text_length_max` (4096, `OptionManager.cpp`): "Bad Request: message is too long"; empty text:
  `Client.cpp` "Bad Request: message text is empty".
- 403 "Forbidden: bot was blocked by the user" (`Client.cpp`, USER_IS_BLOCKED); 400 "Bad Request: chat not found"
  (`Client.cpp`).
- 429: `Query.cpp` `set_retry_after_error` -> description "Too Many Requests: retry after N",
  `parameters.retry_after` N, and `HttpConnection.cpp` adds the `Retry-After: N` header.
- `answerCallbackQuery` needs `callback_query_id` (https://core.telegram.org/bots/api#answercallbackquery).
- `getWebhookInfo` fields url, has_custom_certificate, pending_update_count, max_connections, allowed_updates,
  last_error_date, last_error_message (https://core.telegram.org/bots/api#webhookinfo); `setWebhook` stores
  `allowed_updates` (https://core.telegram.org/bots/api#setwebhook).
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

MESSAGE_TEXT_LENGTH_MAX = 4096
HTML_TAGS = {
    "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji", "tg-time", "span",
    "pre", "code", "blockquote",
}  # fmt: skip
MARKDOWN_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def _chat_id(value: Any) -> Any:
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else value


class BotApiError(Exception):
    """An error the real API answers with: HTTP status = error_code, and the description."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def _parse_error(message: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: can't parse entities: {message}")


def parse_markdown(text: str) -> str:
    """Legacy Markdown as td's `parse_markdown`: an opening `_ * \\` [` needs its closing character."""
    data = text.encode()
    i = 0
    while i < len(data):
        c = chr(data[i])
        if c == "\\" and i + 1 < len(data) and chr(data[i + 1]) in "_*`[":
            i += 2
            continue
        if c not in "_*`[":
            i += 1
            continue
        close = data.find(("]" if c == "[" else c).encode(), i + 1)
        if close < 0:
            raise _parse_error(f"Can't find end of the entity starting at byte offset {i}")
        i = close + 1
        if c == "[" and data[i : i + 1] == b"(":
            paren = data.find(b")", i)
            i = len(data) if paren < 0 else paren + 1
    return _strip_markdown(text)


def _strip_markdown(text: str) -> str:
    return re.sub(r"\\([_*`\[])|[_*`\[\]]", lambda m: m.group(1) or "", text)


def parse_markdown_v2(text: str) -> str:
    """MarkdownV2 as td's `parse_markdown_v2`: reserved characters must be escaped, entities closed."""
    out: list[str] = []
    open_entities: list[tuple[str, int]] = []
    data = text.encode()
    i = 0
    while i < len(data):
        c = chr(data[i])
        if c == "\\" and i + 1 < len(data) and 0 < data[i + 1] <= 126:
            out.append(chr(data[i + 1]))
            i += 2
            continue
        if c in "_*~|" or c == "`":
            if open_entities and open_entities[-1][0] == c:
                open_entities.pop()
            elif c == "|" and data[i + 1 : i + 2] != b"|":
                raise _parse_error(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
            else:
                open_entities.append((c, i))
            i += 2 if c == "|" else 1
            continue
        if c in MARKDOWN_V2_RESERVED:
            raise _parse_error(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        end = i + 1
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end += 1
        out.append(data[i:end].decode())
        i = end
    if open_entities:
        kind, offset = open_entities[-1]
        raise _parse_error(f"Can't find end of {_V2_NAMES[kind]} entity at byte offset {offset}")
    return "".join(out)


_V2_NAMES = {"_": "Italic", "*": "Bold", "~": "Strikethrough", "|": "Spoiler", "`": "Code"}


def parse_html(text: str) -> str:
    """HTML as td's `parse_html`: only the supported tags, every tag closed in order, entities decoded."""
    out: list[str] = []
    stack: list[str] = []
    data = text.encode()
    i = 0
    while i < len(data):
        if data[i : i + 1] != b"<":
            nxt = data.find(b"<", i)
            nxt = len(data) if nxt < 0 else nxt
            out.append(html.unescape(data[i:nxt].decode()))
            i = nxt
            continue
        close = data.find(b">", i)
        if close < 0:
            which = "end" if data[i + 1 : i + 2] == b"/" else "start"
            raise _parse_error(f"Unclosed {which} tag at byte offset {i}")
        inner = data[i + 1 : close].decode()
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise _parse_error(f"Unexpected end tag at byte offset {i}")
            if name and name != stack[-1]:
                raise _parse_error(
                    f'Unmatched end tag at byte offset {i}, expected "</{stack[-1]}>", found "</{name}>"'
                )
            stack.pop()
        else:
            name = re.split(r"[\s>]", inner, maxsplit=1)[0].lower()
            if name not in HTML_TAGS:
                raise _parse_error(f'Unsupported start tag "{name}" at byte offset {i}')
            stack.append(name)
        i = close + 1
    if stack:
        raise _parse_error(f"Can't find end of {stack[-1]} entity at byte offset {len(data)}")
    return "".join(out)


PARSERS = {"Markdown": parse_markdown, "MarkdownV2": parse_markdown_v2, "HTML": parse_html}


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text a user sees, or the error the real API answers for `text` under `parse_mode`."""
    parsed = PARSERS[parse_mode](text) if parse_mode in PARSERS else text
    if not parsed.strip():
        raise BotApiError(400, "Bad Request: message text is empty")
    if len(parsed) > MESSAGE_TEXT_LENGTH_MAX:  # Python's len counts code points, like td's utf8_length
        raise BotApiError(400, "Bad Request: message is too long")
    return parsed


@dataclass
class TelegramCall:
    token: str
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Delivered:
    """A message the user would see: its chat, the text after entity parsing, its reply markup."""

    chat_id: str
    text: str
    reply_markup: dict[str, Any] | None
    at: float


@dataclass
class FakeTelegram:
    """Serve on `host` (a random port). Tests set the failure knobs:

    `fail_with` (every call answers that status), `blocked_chats` (403), `missing_chats` (400 chat not found),
    `rate_limited` (chat -> how many sends to refuse with 429 before accepting) with `retry_after` seconds.
    `impostor_chats`: sends to them get HTTP 200 with `{}`, which the real API never answers (every answer has
    `ok`, https://core.telegram.org/bots/api#making-requests); it stands for what is *not* the Bot API answering
    in its place (a wrong `TELEGRAM_API_BASE_URL`, a proxy's stub). Nothing is delivered.
    """

    host: str
    calls: list[TelegramCall] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    fail_with: int | None = None
    blocked_chats: set[str] = field(default_factory=set)
    missing_chats: set[str] = field(default_factory=set)
    rate_limited: dict[str, int] = field(default_factory=dict)
    impostor_chats: set[str] = field(default_factory=set)
    retry_after: int = 3
    webhook: dict[str, Any] = field(
        default_factory=lambda: {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
    )

    def __post_init__(self) -> None:
        fake = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode()
                params = fake._params(raw, self.headers.get("content-type") or "", self.path)
                _, bot, method = self.path.split("?")[0].split("/", 2)
                call = TelegramCall(bot.removeprefix("bot"), method, params)
                if call.method == "sendMessage" and str(call.params.get("chat_id")) in fake.impostor_chats:
                    with fake._lock:
                        fake.calls.append(call)
                    self._reply(200, {}, None)
                    return
                try:
                    with fake._lock:
                        fake.calls.append(call)
                        result = fake.handle(call)
                    self._reply(200, {"ok": True, "result": result}, None)
                except BotApiError as error:
                    body: dict[str, Any] = {"ok": False, "error_code": error.code, "description": error.description}
                    if error.retry_after is not None:
                        body["parameters"] = {"retry_after": error.retry_after}
                    self._reply(error.code, body, error.retry_after)

            do_GET = do_POST

            def _reply(self, status: int, body: dict[str, Any], retry_after: int | None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def _params(raw: str, content_type: str, path: str) -> dict[str, Any]:
        if "json" in content_type:
            params: dict[str, Any] = json.loads(raw or "{}")
        else:
            params = {k: v[0] for k, v in parse_qs(raw).items()}
        if "?" in path:
            params.update({k: v[0] for k, v in parse_qs(path.split("?", 1)[1]).items()})
        return params

    def handle(self, call: TelegramCall) -> Any:
        """The `result` of one call, or raise the error the real API would answer."""
        if self.fail_with:
            raise BotApiError(self.fail_with, "Internal Server Error")
        if call.method == "sendMessage":
            return self._send_message(call.params)
        if call.method == "answerCallbackQuery":
            if not call.params.get("callback_query_id"):
                raise BotApiError(400, 'Bad Request: parameter "callback_query_id" is required')
            return True
        if call.method == "getWebhookInfo":
            return dict(self.webhook)
        if call.method == "setWebhook":
            allowed = call.params.get("allowed_updates")
            self.webhook.update(url=call.params.get("url", ""))
            if allowed is not None:
                self.webhook["allowed_updates"] = json.loads(allowed) if isinstance(allowed, str) else allowed
            return True
        if call.method == "getMe":
            return {"id": int(call.token.split(":")[0]), "is_bot": True, "first_name": "Fake", "username": "fake_bot"}
        raise BotApiError(404, "Not Found")

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = str(params.get("chat_id"))
        if chat in self.missing_chats:
            raise BotApiError(400, "Bad Request: chat not found")
        if chat in self.blocked_chats:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        if self.rate_limited.get(chat, 0) > 0:
            self.rate_limited[chat] -= 1
            raise BotApiError(429, f"Too Many Requests: retry after {self.retry_after}", self.retry_after)
        text = visible_text(str(params.get("text") or ""), params.get("parse_mode") or None)
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        self.delivered.append(Delivered(chat, text, markup, time.monotonic()))
        return {
            "message_id": len(self.calls),
            "date": int(time.time()),
            # Chat.id is an Integer (core.telegram.org/bots/api#chat), also when the request sent it as a string:
            # clients that decode it strictly (Alertmanager's telebot) refuse a string and retry.
            "chat": {"id": _chat_id(params.get("chat_id")), "type": "private"},
            "text": text,
        }

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def sent_messages(self) -> list[TelegramCall]:
        return [c for c in self.calls if c.method == "sendMessage"]

    def delivered_to(self, chat_id: str) -> list[Delivered]:
        return [d for d in self.delivered if d.chat_id == chat_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
