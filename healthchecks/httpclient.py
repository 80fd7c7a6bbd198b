"""HTTP for the probes: one budget, bounded retries for transient failures only, classified errors.

Retried: connection errors, 5xx, and 429 when its Retry-After still fits in the probe's budget. Never
retried: 401/403/404 (retrying a bad token only burns rate limit) and timeouts (the budget is spent).
Every error text passes through the probe's redactor because httpx exceptions may carry the request URL,
and some APIs (Telegram) put the token in the path.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from healthchecks.context import ProbeContext
from healthchecks.problems import Problem
from healthchecks.result import Status

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers, the JSON body when there is a valid one, and why not otherwise."""

    status_code: int
    headers: httpx.Headers
    body: Any
    json_error: str | None
    latency: float
    attempts: int
    text: str = ""

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (Retry-After header, or Telegram's parameters.retry_after)."""
        return retry_after_seconds(self.headers.get("retry-after"), self.body)


@dataclass(frozen=True)
class Service:
    """How to name a dependency and its settings in findings: "Coda rejected the token (CODA_API_TOKEN)"."""

    name: str
    token_setting: str
    base_setting: str
    status_page: str = ""


def make_client(headers: dict[str, str] | None = None, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """A client that never follows redirects: a redirect from an API is a finding, not something to chase."""
    context = system_tls_context() if verify is True else verify
    return httpx.Client(headers=headers or {}, verify=context, follow_redirects=False)


@functools.cache
def system_tls_context() -> ssl.SSLContext:
    """One verifying context for all probes, built once, from the system trust store.

    Loading a CA bundle costs ~20 ms of CPU under the GIL: one per probe, in parallel, added that to the
    suite's wall time. The system store (not certifi's) is what the host's admins maintain, including any
    corporate proxy CA the host trusts.
    """
    return ssl.create_default_context()


def fetch(client: httpx.Client, method: str, url: str, ctx: ProbeContext, service: Service, **kwargs: Any) -> Reply:
    """One logical request within the probe's budget. Raises :class:`Problem` when no HTTP answer came."""
    attempt = 0
    while True:
        attempt += 1
        try:
            reply = _attempt(client, method, url, ctx, service, **kwargs)
            reply = dataclasses.replace(reply, attempts=attempt)
        except _Transient as transient:
            if not _can_retry(ctx, attempt, _backoff(ctx, attempt)):
                raise transient.problem from None
            time.sleep(_backoff(ctx, attempt))
            continue
        if reply.status_code not in TRANSIENT_STATUSES:
            return reply
        wait = reply.retry_after if reply.retry_after is not None else _backoff(ctx, attempt)
        if not _can_retry(ctx, attempt, wait):
            return reply
        time.sleep(wait)


class _Transient(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def _attempt(client: httpx.Client, method: str, url: str, ctx: ProbeContext, service: Service, **kwargs: Any) -> Reply:
    budget = ctx.remaining()
    if budget <= 0:
        raise _timeout(ctx, service)
    started = time.monotonic()
    try:
        response = client.request(method, url, timeout=budget, **kwargs)
    except httpx.TimeoutException:
        raise _timeout(ctx, service) from None
    except httpx.TransportError as exc:
        raise _transport_problem(exc, ctx, service) from None
    body, json_error = _parse_json(response)
    latency = time.monotonic() - started
    text = response.text if json_error else ""
    return Reply(response.status_code, response.headers, body, json_error, latency, 1, text)


def _can_retry(ctx: ProbeContext, attempt: int, wait: float) -> bool:
    return attempt <= ctx.retries and wait + 0.05 < ctx.remaining()


def _backoff(ctx: ProbeContext, attempt: int) -> float:
    return float(ctx.backoff * 2 ** (attempt - 1))


def _timeout(ctx: ProbeContext, service: Service) -> Problem:
    return Problem(
        "reachable",
        Status.CRITICAL,
        f"{service.name} did not answer within the {ctx.timeout:g} s timeout",
        f"Check network egress and DNS to {service.name} ({service.base_setting}); "
        + (f"see {service.status_page}. " if service.status_page else "")
        + "If the API is merely slow, raise the probe timeout.",
    )


def _transport_problem(exc: httpx.TransportError, ctx: ProbeContext, service: Service) -> Exception:
    reason = ctx.redactor.exception(exc.__cause__ or exc.__context__ or exc)
    if _is_tls_failure(exc):
        return Problem(
            "reachable",
            Status.CRITICAL,
            f"TLS to {service.name} failed ({reason})",
            f"An intercepting proxy or wrong {service.base_setting} presents a certificate we do not trust: "
            "fix the URL or install the proxy's CA in the system trust store.",
        )
    return _Transient(
        Problem(
            "reachable",
            Status.CRITICAL,
            f"cannot connect to {service.name} ({reason})",
            f"Check {service.base_setting}, DNS and outbound network/firewall to {service.name}"
            + (f"; see {service.status_page}." if service.status_page else "."),
        )
    )


def _is_tls_failure(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _parse_json(response: httpx.Response) -> tuple[Any, str | None]:
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type.lower():
        return None, f"answered with content type {content_type or 'none'!r}, not JSON"
    try:
        return json.loads(response.content), None
    except ValueError:
        return None, "answered with malformed JSON"


def retry_after_seconds(header: str | None, body: Any = None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date) or a Telegram-style body hint."""
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(header).timestamp() - (time.time() if now is None else now))
        except (TypeError, ValueError):
            return None
    if isinstance(body, dict) and isinstance(body.get("parameters"), dict):
        hint = body["parameters"].get("retry_after")
        if isinstance(hint, int | float):
            return float(hint)
    return None


def generic_problem(reply: Reply, service: Service, check: str, not_found: str = "") -> Problem | None:
    """The standard finding for an HTTP answer that is not a usable success, or None when it is usable."""
    if reply.status_code == 429:
        return rate_limited(reply, service, check)
    described = _describe(reply, service, not_found)
    return Problem(check, *described) if described else None


def _describe(reply: Reply, service: Service, not_found: str) -> tuple[Status, str, str] | None:
    code, name = reply.status_code, service.name
    by_code = {
        401: (
            Status.CRITICAL,
            f"{name} rejected the token (HTTP 401)",
            f"The token in {service.token_setting} is invalid, expired or revoked: issue a new one and update "
            "the setting (and the n8n credential that uses it).",
        ),
        403: (
            Status.CRITICAL,
            f"{name} refused access (HTTP 403)",
            f"The token in {service.token_setting} is valid but lacks permission for this resource: grant "
            "access (share the doc / add the scope) or use a token of an account that has it.",
        ),
        404: (
            Status.CRITICAL,
            not_found or f"{name} answered 404 Not Found",
            f"Check the IDs in the settings and {service.base_setting} (a wrong base path also gives 404).",
        ),
    }
    if code in by_code:
        return by_code[code]
    if code >= 500:
        status_page = f"check {service.status_page}; " if service.status_page else ""
        return (
            Status.CRITICAL,
            f"{name} server error HTTP {code} after {reply.attempts} attempt(s)",
            f"{name} is failing on its side: {status_page}workflows using it fail or retry until it recovers.",
        )
    if reply.json_error is not None:
        return (
            Status.UNKNOWN,
            f"{name} {reply.json_error} (HTTP {code})",
            f"Something other than the {name} API answered: check {service.base_setting} and any proxy or "
            "captive portal between this host and the API.",
        )
    if not 200 <= code < 300:
        return (
            Status.CRITICAL,
            f"{name} answered HTTP {code}",
            f"Unexpected answer: check {service.base_setting} (a redirect means a wrong base URL).",
        )
    return None


def rate_limited(reply: Reply, service: Service, check: str) -> Problem:
    """429 is a WARNING, never "down": the service answered; we were asked to slow down."""
    wait = reply.retry_after
    hint = f", Retry-After {wait:g} s" if wait is not None else ""
    return Problem(
        check,
        Status.WARNING,
        f"{service.name} rate-limited the check (HTTP 429{hint}); state not verified",
        f"Something is using the {service.name} quota heavily (workflows in a loop?) or checks run too often: "
        "look at recent executions and slow the polling; re-run the check after the wait.",
    )


def json_object(reply: Reply, service: Service, check: str) -> dict[str, Any]:
    """The body as a JSON object, or an UNKNOWN finding: a 200 with the wrong shape is not the real API."""
    if isinstance(reply.body, dict):
        return reply.body
    raise Problem(
        check,
        Status.UNKNOWN,
        f"{service.name} answered HTTP {reply.status_code} with an unexpected body shape",
        f"Something other than the {service.name} API answered: check {service.base_setting}.",
    )
