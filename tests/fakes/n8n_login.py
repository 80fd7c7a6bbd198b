"""n8n's owner login and password change, with n8n's login rate limiter in front, as far as rotation sees them.

What it mirrors, and where that is written:
- n8n 2.8.4 packages/cli/src/controllers/auth.controller.ts, `@Post('/login', {skipAuth, ipRateLimit,
  keyedRateLimit})`: a per-e-mail limiter, `createBodyKeyedRateLimiter({limit: 5, windowMs: 1 minute, field:
  'emailOrLdapLoginId'})`, behind an IP limiter of 1000 per 5 minutes (not modelled: one client never reaches it).
- packages/cli/src/services/rate-limit.service.ts `createBodyKeyedRateLimitMiddleware`: express-rate-limit keyed
  by `body:<emailOrLdapLoginId>`, the library's default message and headers; packages/cli/src/controller.registry.ts
  runs it *before* authentication (only `inProduction`), so every attempt counts, right or wrong password.
- express-rate-limit 7.5.0, the version n8n 2.8.4 installs (dist/index.cjs; source/memory-store.ts, rate-limit.ts,
  headers.ts upstream): MemoryStore.increment resets a key whose resetTime has passed to now + windowMs, then
  counts the hit, so each key's window starts at its first hit, and a hit over the limit still counts without
  extending the window; over the limit the answer is 429 with the text "Too many requests, please try again
  later." and `Retry-After` = ceil(seconds until the key's window resets); `legacyHeaders` defaults to true
  (`X-RateLimit-Limit/Remaining/Reset` on every answer) and `standardHeaders` to false (no `RateLimit-*`).
  Checked in the offline image: /usr/local/lib/n8n/node_modules/express-rate-limit/dist/index.cjs.
- The login answers `Set-Cookie: n8n-auth=<jwt>` (AuthService.issueCookie); a wrong password is 401 "Wrong
  username or password. Do you have caps lock on?". PATCH /rest/me/password {currentPassword, newPassword} needs
  the cookie (me.controller.ts `updatePassword`).
- The owner's API keys (n8n 2.8.4 dist/controllers/api-keys.controller.js, all behind the cookie): POST
  /rest/api-keys {label, scopes, expiresAt} answers the record with `rawApiKey` (a duplicate label is HTTP 500
  "There is already an entry with this name"), GET lists them redacted, DELETE /rest/api-keys/:id deletes one
  (an unknown id too: public-api-key.service.js `deleteApiKeyForUser` is a plain repository delete). `api_keys`
  holds what n8n's `user_api_keys` would. GET /rest/settings says the owner is set up.

`window_s` is the stand-in's only liberty: unit tests shorten the minute to seconds.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from dataclasses import dataclass

from tests.fakes.server import FakeApi, Request, Response

DEFAULT_MESSAGE = "Too many requests, please try again later."  # express-rate-limit's default `message`


@dataclass
class _Window:
    hits: int
    reset_at: float  # time.monotonic()


class N8nLoginFake(FakeApi):
    """One owner account; `logins` counts POST /rest/login attempts, `limited` the ones answered 429."""

    def __init__(self, email: str, password: str, *, limit: int = 5, window_s: float = 60.0) -> None:
        super().__init__()
        self.email = email
        self.password = password
        self.limit = limit
        self.window_s = window_s
        self.logins = 0
        self.limited = 0
        self.password_changes = 0
        self._windows: dict[str, _Window] = {}
        self._sessions: set[str] = set()
        self._limiter_lock = threading.Lock()
        self.api_keys: dict[str, dict[str, object]] = {}
        self.refuse_deletes = False  # n8n failing (its database gone) at the end of a run

    def error(self, status: int, message: str) -> Response:
        return Response(status, {"code": status, "message": message})

    def route(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/rest/login":
            return self._login(request)
        if request.method == "PATCH" and request.path == "/rest/me/password":
            return self._change_password(request)
        if request.method == "GET" and request.path == "/rest/settings":
            return Response(200, {"data": {"userManagement": {"showSetupOnFirstLoad": False}}})
        if request.path.startswith("/rest/api-keys"):
            return self._api_keys(request)
        return self.error(404, f"{request.method} {request.path} is not part of this stand-in")

    def _login(self, request: Request) -> Response:
        body = json.loads(request.body or b"{}")
        self.logins += 1
        key = body.get("emailOrLdapLoginId")
        headers: dict[str, str] = {}
        if isinstance(key, str):  # rate-limit.service.ts: a missing or non-string field skips the limiter
            allowed, headers = self._hit(f"body:{key}")
            if not allowed:
                self.limited += 1
                return Response(429, DEFAULT_MESSAGE, "text/html; charset=utf-8", headers)
        if key != self.email or body.get("password") != self.password:
            return Response(401, {"code": 401, "message": "Wrong username or password. Do you have caps lock on?"})
        token = secrets.token_urlsafe(16)
        self._sessions.add(token)
        cookie = f"n8n-auth={token}; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax"
        return Response(200, {"data": {"email": self.email}}, headers={**headers, "Set-Cookie": cookie})

    def _hit(self, key: str) -> tuple[bool, dict[str, str]]:
        """express-rate-limit's increment and check for one key: (allowed, the headers it sets)."""
        now = time.monotonic()
        with self._limiter_lock:
            window = self._windows.get(key)
            if window is None or window.reset_at <= now:
                window = self._windows[key] = _Window(0, now + self.window_s)
            window.hits += 1
            reset_s = max(0, math.ceil(window.reset_at - now))
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(0, self.limit - window.hits)),
                "X-RateLimit-Reset": str(math.ceil(time.time() + (window.reset_at - now))),
            }
            if window.hits <= self.limit:
                return True, headers
            return False, {**headers, "Retry-After": str(reset_s)}

    def _signed_in(self, request: Request) -> bool:
        cookie = request.headers.get("cookie", "")
        return cookie.removeprefix("n8n-auth=").split(";", 1)[0] in self._sessions

    def _api_keys(self, request: Request) -> Response:
        if not self._signed_in(request):
            return self.error(401, "Unauthorized")
        if request.method == "GET":
            return Response(200, {"data": [{**key, "apiKey": "******"} for key in self.api_keys.values()]})
        if request.method == "POST":
            body = json.loads(request.body or b"{}")
            if any(key["label"] == body["label"] for key in self.api_keys.values()):
                return self.error(500, "There is already an entry with this name")
            key_id = secrets.token_hex(8)
            record = {"id": key_id, "label": body["label"], "scopes": body["scopes"], "expiresAt": body["expiresAt"]}
            self.api_keys[key_id] = {**record, "apiKey": f"raw-{key_id}"}
            return Response(200, {"data": {**record, "apiKey": "******", "rawApiKey": f"raw-{key_id}"}})
        if request.method == "DELETE":
            return self._delete_api_key(request.path.rsplit("/", 1)[1])
        return self.error(404, f"{request.method} {request.path} is not part of this stand-in")

    def _delete_api_key(self, key_id: str) -> Response:
        if self.refuse_deletes:
            return self.error(503, "Database is not ready!")
        self.api_keys.pop(key_id, None)
        return Response(200, {"data": {"success": True}})

    def _change_password(self, request: Request) -> Response:
        if not self._signed_in(request):
            return self.error(401, "Unauthorized")
        body = json.loads(request.body or b"{}")
        if body.get("currentPassword") != self.password:
            return self.error(400, "Provided current password is incorrect.")
        self.password = str(body["newPassword"])
        self.password_changes += 1
        return Response(200, {"data": {"email": self.email}})
