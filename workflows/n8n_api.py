"""The parts of n8n's APIs the seeder needs (verified against n8n 2.8).

Headless set-up has no environment variable for an owner or an API key: the owner is created with
`POST /rest/owner/setup`, a session comes from `POST /rest/login`, and an API key from `POST /rest/api-keys`.
Everything else uses the public API (`/api/v1`, header `X-N8N-API-KEY`), which updates and activates live.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from healthchecks.httpclient import retry_after_seconds

# What the key is used for, nothing more: seeding (workflows incl. retire-by-delete; credentials are created and
# updated, never deleted). n8n 2.8.4's community edition ignores them and gives the key all of the owner's scopes
# (docs/security.md), which is why the seeder deletes its key when it is done (workflows/deploy.py). n8n signs the
# key as a JWT (dist/services/public-api-key.service.js, generateApiKey) with `expiresAt` (unix seconds) in it.
OWNER_SCOPES = [
    "workflow:create", "workflow:read", "workflow:update", "workflow:delete", "workflow:list",
    "workflow:activate", "workflow:deactivate", "credential:create", "credential:update", "credential:list",
    "execution:list", "execution:read",
]  # fmt: skip


# n8n 2.8.4 rate-limits POST /rest/login (packages/cli/src/controllers/auth.controller.ts, `@Post('/login')`):
# 5 attempts per minute per `emailOrLdapLoginId` (keyedRateLimit) and 1000 per 5 minutes per IP (ipRateLimit),
# both express-rate-limit middlewares (packages/cli/src/services/rate-limit.service.ts) that only run with
# NODE_ENV=production, as in the official image. Every attempt counts, successful or not, and a 429 carries
# `Retry-After` (seconds until the key's window resets; express-rate-limit 7.5.0, which n8n 2.8.4 installs, sends
# it with its default legacy headers); the window is the fallback when an answer lacks it.
LOGIN_ATTEMPTS_PER_WINDOW = 5
LOGIN_RATE_WINDOW_S = 60.0
# How long one login may wait for n8n's limiter by default: one whole window and some slack, so a run that
# follows another run's logins (a seeding, a rotation, a person at the editor) gets through instead of failing.
LOGIN_MAX_WAIT_S = 90.0


class N8nApiError(RuntimeError):
    """n8n refused or failed a request; the message names the call and n8n's answer (never a key)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class N8nRateLimited(N8nApiError):
    """n8n answered 429 for longer than the caller may wait; `retry_after_s` is what n8n asked for."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, 429)
        self.retry_after_s = retry_after_s


def _check(response: httpx.Response, what: str) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        detail = response.json().get("message", response.text)
    except (ValueError, AttributeError):  # express-rate-limit's default 429 body is plain text
        detail = response.text[:300]
    raise N8nApiError(f"n8n {what}: HTTP {response.status_code}: {detail}", response.status_code)


def retry_after_s(response: httpx.Response, default_s: float, *, now: float | None = None) -> float:
    """Seconds until a 429'd request may be retried: `Retry-After` (delta-seconds or an HTTP-date, RFC 9110
    section 10.2.3, read as the health probes read it), else `RateLimit-Reset` (delta-seconds, IETF draft-6
    headers, express-rate-limit's default), else `default_s` (the limiter's documented window)."""
    asked = retry_after_seconds(response.headers.get("retry-after", "").strip(), now=now)
    if asked is not None:
        return asked
    reset = response.headers.get("ratelimit-reset", "").strip()
    return float(reset) if reset.isdigit() else default_s


class N8nSession:
    """Owner set-up, login and API keys (the internal REST API, cookie-authenticated)."""

    def __init__(self, base_url: str, *, timeout: float = 30, **client_options: Any) -> None:
        # n8n binds the session cookie to a browser id sent with the login; one fixed id for this session.
        headers = {"browser-id": "kaizenity-seeder"}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers, **client_options)

    def close(self) -> None:
        self._http.close()

    def owner_is_set_up(self) -> bool:
        settings = _check(self._http.get("/rest/settings"), "GET /rest/settings")
        return not bool(settings["data"]["userManagement"]["showSetupOnFirstLoad"])

    def set_up_owner(self, email: str, password: str) -> None:
        body = {"email": email, "firstName": "Kaizenity", "lastName": "Operations", "password": password}
        _check(self._http.post("/rest/owner/setup", json=body), "owner set-up")

    def login(
        self,
        email: str,
        password: str,
        *,
        max_wait_s: float = LOGIN_MAX_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Log in as `email`; on n8n's login rate limit (429) wait as n8n asks, at most `max_wait_s` in all.

        Raises N8nRateLimited, naming the cause and the fix, when n8n asks for a longer wait than is left.
        """
        waited = 0.0
        while True:
            response = self._http.post("/rest/login", json={"emailOrLdapLoginId": email, "password": password})
            if response.status_code != 429:
                break
            wait = math.ceil(retry_after_s(response, LOGIN_RATE_WINDOW_S))
            if waited + wait > max_wait_s:
                raise N8nRateLimited(
                    f"n8n login: HTTP 429: n8n is rate-limiting logins as {email} (it allows "
                    f"{LOGIN_ATTEMPTS_PER_WINDOW} attempts per {LOGIN_RATE_WINDOW_S:.0f} s per e-mail, successful or "
                    f"not) and asks to retry in {wait} s; this run already waited {waited:.0f} s and may wait "
                    f"{max_wait_s:.0f} s in all. Cause: other logins as this user in the last minute (another "
                    "seeding or rotation running at the same time, a script or a person at the editor). Fix: wait "
                    f"{wait} s and run it again, and do not run seeding or rotations of this environment in parallel.",
                    float(wait),
                )
            sleep(wait)
            waited += wait
        _check(response, "login")
        self._keep_auth_cookie(response)

    def _keep_auth_cookie(self, response: httpx.Response) -> None:
        """Send n8n's `n8n-auth` cookie back explicitly.

        n8n marks it Secure (right behind the TLS gateway); the seeder may talk to n8n over plain HTTP on
        loopback, where a cookie jar would rightly refuse to send a Secure cookie.
        """
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == "n8n-auth":
                self._http.headers["cookie"] = f"n8n-auth={rest.split(';', 1)[0]}"
                return
        raise N8nApiError("n8n login: no n8n-auth cookie in the answer; is this an n8n 2.x instance?")

    def change_password(self, current: str, new: str) -> None:
        """The logged-in user's password (n8n 2.8.4 dist/controllers/me.controller.js `updatePassword`:
        PATCH /rest/me/password {currentPassword, newPassword}; the new one must pass n8n's password policy)."""
        body = {"currentPassword": current, "newPassword": new}
        _check(self._http.patch("/rest/me/password", json=body), "owner password change")

    def create_api_key(self, label: str, expires_at: int | None) -> ApiKey:
        """A new API key of the logged-in user; `expires_at` in unix seconds (n8n signs it into the key's JWT and
        refuses the key after it), None for a key that never expires."""
        body = {"label": label, "scopes": OWNER_SCOPES, "expiresAt": expires_at}
        data = _check(self._http.post("/rest/api-keys", json=body), "API key creation")["data"]
        return ApiKey(str(data["id"]), str(data["label"]), str(data["rawApiKey"]))

    def create_expiring_key(self, label: str, ttl_s: float) -> ApiKey:
        """A key labelled `label` and the UTC time (n8n refuses a second key with the same label: HTTP 500 "There
        is already an entry with this name"), refused by n8n `ttl_s` seconds from now."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return self.create_api_key(f"{label} {stamp}", expires_at=int(time.time() + ttl_s))

    def api_keys(self) -> list[dict[str, Any]]:
        """The logged-in user's API keys, redacted by n8n: `id`, `label`, `expiresAt`..., never the raw key."""
        return list(_check(self._http.get("/rest/api-keys"), "GET /rest/api-keys")["data"])

    def delete_api_key(self, key_id: str) -> None:
        """n8n 2.8.4 dist/controllers/api-keys.controller.js `deleteApiKey`: DELETE /rest/api-keys/:id (the
        `user_api_keys.id` of one of the logged-in user's keys; deleting an unknown id succeeds)."""
        _check(self._http.delete(f"/rest/api-keys/{key_id}"), "API key deletion")


@dataclass(frozen=True)
class ApiKey:
    """One minted key: n8n's id (to delete it), its label, and the raw key (a secret)."""

    id: str
    label: str
    raw: str = field(repr=False)


class PublicApi:
    """Workflows and credentials through the public API."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30, **client_options: Any) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"X-N8N-API-KEY": api_key},
            timeout=timeout,
            **client_options,
        )

    def close(self) -> None:
        self._http.close()

    def key_works(self) -> bool:
        response = self._http.get("/workflows", params={"limit": 1})
        if response.status_code == 401:
            return False
        _check(response, "GET /workflows")
        return True

    def workflows(self) -> list[dict[str, Any]]:
        return self._paged("/workflows")

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        return dict(_check(self._http.get(f"/workflows/{workflow_id}"), f"GET workflow {workflow_id}"))

    def create_workflow(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(_check(self._http.post("/workflows", json=body), f"create workflow {body['name']!r}"))

    def update_workflow(self, workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(_check(self._http.put(f"/workflows/{workflow_id}", json=body), f"update workflow {body['name']!r}"))

    def set_active(self, workflow_id: str, active: bool) -> None:
        action = "activate" if active else "deactivate"
        _check(self._http.post(f"/workflows/{workflow_id}/{action}"), f"{action} workflow {workflow_id}")

    def delete_workflow(self, workflow_id: str) -> None:
        _check(self._http.delete(f"/workflows/{workflow_id}"), f"delete workflow {workflow_id}")

    def credentials(self) -> list[dict[str, Any]]:
        return self._paged("/credentials")

    def create_credential(self, name: str, cred_type: str, data: dict[str, Any]) -> str:
        body = {"name": name, "type": cred_type, "data": data}
        return str(_check(self._http.post("/credentials", json=body), f"create credential {name!r}")["id"])

    def update_credential(self, credential_id: str, name: str, cred_type: str, data: dict[str, Any]) -> None:
        body = {"name": name, "type": cred_type, "data": data}
        _check(self._http.patch(f"/credentials/{credential_id}", json=body), f"update credential {name!r}")

    def _paged(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 250, **({"cursor": cursor} if cursor else {})}
            page = _check(self._http.get(path, params=params), f"GET {path}")
            items += page["data"]
            cursor = page.get("nextCursor")
            if not cursor:
                return items
