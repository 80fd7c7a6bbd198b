"""The Caddy gateway: reachable, certificate not about to expire, webhooks reach n8n, editor locked.

Caddy's ``tls internal`` certificates live 12 h and are renewed continuously by design, so day-based
thresholds would page on every run. An internal-CA certificate (configured, or recognised by its
"Caddy Local Authority" issuer) is judged in hours and can at worst be a WARNING: it never pages anyone.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from healthchecks.context import ProbeContext
from healthchecks.httpclient import Reply, Service, fetch, make_client
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit
from healthchecks.tlscert import peer_certificate
from healthchecks.x509 import CertificateInfo, CertificateParseError

SERVICE = Service("the gateway", "", "KAIZENITY_GATEWAY_URL")
INTERNAL_ISSUER = "Caddy Local Authority"
DAY = 86400.0


@dataclass(frozen=True)
class GatewayTarget:
    """The public base URL and the certificate thresholds for this gateway."""

    url: str
    tls_warning_days: float = 21.0
    tls_critical_days: float = 7.0
    internal_ca: bool | None = None  # None: recognise Caddy's internal CA by the issuer name
    internal_warning_hours: float = 2.0
    ca_file: str | None = None
    webhook_path: str = "/webhook/kaizenity-healthcheck"
    editor_path: str = "/"


def probe(target: GatewayTarget, ctx: ProbeContext) -> ProbeResult:
    """Certificate first (it needs no HTTP), then the webhook and editor routes."""
    builder = ResultBuilder("gateway")
    parts = urlsplit(target.url)
    internal = target.internal_ca
    try:
        if parts.scheme == "https":
            internal = _check_certificate(parts.hostname or "", parts.port or 443, target, ctx, builder)
        with make_client(verify=_verify(target, internal)) as client:
            _check_webhook_route(client, target, ctx, builder)
            _check_editor_locked(client, target, ctx, builder)
    except Problem as problem:
        problem.record(builder)
    return builder.build()


def _verify(target: GatewayTarget, internal: bool | None) -> ssl.SSLContext | bool:
    if target.ca_file:
        return ssl.create_default_context(cafile=target.ca_file)
    return not internal  # an internal CA is not in this host's trust store by design


def _check_certificate(host: str, port: int, target: GatewayTarget, ctx: ProbeContext, builder: ResultBuilder) -> bool:
    """Judge the certificate's remaining life; returns whether it is from an internal CA."""
    try:
        cert = peer_certificate(host, port, max(0.05, ctx.remaining()))
    except (OSError, CertificateParseError) as exc:
        raise Problem(
            "reachable",
            Status.CRITICAL,
            f"gateway unreachable over TLS at {host}:{port} ({ctx.redactor.exception(exc)})",
            "Check the gateway container is running (`docker ps`), its published ports and the firewall; "
            "`docker logs` the gateway for certificate or config errors.",
        ) from None
    internal = target.internal_ca if target.internal_ca is not None else INTERNAL_ISSUER in cert.issuer
    left = (cert.not_after - ctx.now()).total_seconds()
    if internal:
        _judge_internal(cert, left, target, builder)
    else:
        _judge_public(cert, left, target, builder)
    return internal


def _judge_public(cert: CertificateInfo, left: float, target: GatewayTarget, builder: ResultBuilder) -> None:
    warn, crit = target.tls_warning_days * DAY, target.tls_critical_days * DAY
    builder.measure(Measurement("cert_expiry", round(left), Unit.SECONDS, warn, crit, low_is_bad=True))
    text = f"certificate expires in {left / DAY:.1f} days ({cert.not_after:%Y-%m-%d %H:%M} UTC)"
    fix = (
        "Caddy renews ACME certificates 30 days ahead: renewal is failing. Check `docker logs` of the gateway "
        "for ACME errors (DNS, port 80/443 reachable from the internet, rate limits at the CA)."
    )
    if left <= 0:
        builder.add("certificate", Status.CRITICAL, f"certificate EXPIRED on {cert.not_after:%Y-%m-%d}", fix)
    elif left < crit:
        builder.add("certificate", Status.CRITICAL, text, fix)
    elif left < warn:
        builder.add("certificate", Status.WARNING, text, fix)
    else:
        builder.add("certificate", Status.OK, text)


def _judge_internal(cert: CertificateInfo, left: float, target: GatewayTarget, builder: ResultBuilder) -> None:
    warn = target.internal_warning_hours * 3600
    builder.measure(Measurement("cert_expiry", round(left), Unit.SECONDS, warn, None, low_is_bad=True))
    text = f"internal-CA certificate ({cert.lifetime_seconds / 3600:.0f} h lifetime) has {left / 3600:.1f} h left"
    if left < warn:
        builder.add(
            "certificate",
            Status.WARNING,
            text + ": Caddy is not renewing it",
            "Internal certificates renew well before expiry: restart the gateway and check its logs (the "
            "data volume holding Caddy's local CA must be writable).",
        )
    else:
        builder.add("certificate", Status.OK, text + " (renewed automatically)")


def _get(client: httpx.Client, target: GatewayTarget, path: str, ctx: ProbeContext) -> Reply:
    return fetch(client, "GET", f"{target.url.rstrip('/')}{path}", ctx, SERVICE)


def _check_webhook_route(
    client: httpx.Client, target: GatewayTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    reply = _get(client, target, target.webhook_path, ctx)
    builder.measure(Measurement("latency", round(reply.latency, 4), Unit.SECONDS, minimum=0))
    code = reply.status_code
    if code in (502, 503, 504):
        builder.add(
            "webhooks",
            Status.CRITICAL,
            f"webhook route does not reach n8n (HTTP {code} from the gateway)",
            "The gateway is up but n8n is not answering behind it: run `kaizenity health --only n8n` and check "
            "the n8n container.",
        )
    elif code in (401, 403):
        builder.add(
            "webhooks",
            Status.CRITICAL,
            f"webhook route demands credentials (HTTP {code}): Telegram and other senders are refused",
            "The Caddyfile's public paths (/webhook/*) must bypass basic auth: re-render the gateway config.",
        )
    elif code == 404 and not _from_n8n(reply):
        builder.add(
            "webhooks",
            Status.WARNING,
            f"webhook route answered 404 ({reply.headers.get('content-type') or 'no content type'}), not n8n's "
            "'webhook is not registered' JSON",
            "Either n8n has not registered its webhooks yet (the first ~10 s after a start: re-run), or the "
            "gateway has no /webhook/* route to n8n: check the rendered Caddyfile and `docker logs` of the gateway.",
        )
    else:
        builder.add("webhooks", Status.OK, f"webhook route reaches n8n (HTTP {code})")


def _from_n8n(reply: Reply) -> bool:
    """n8n answers an unknown webhook with JSON naming the webhook; Caddy's own 404 is an empty body."""
    body = reply.body if isinstance(reply.body, dict) else {}
    return "webhook" in str(body.get("message", "")).lower()


def _check_editor_locked(
    client: httpx.Client, target: GatewayTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    code = _get(client, target, target.editor_path, ctx).status_code
    if code in (401, 403):
        builder.add("editor", Status.OK, f"editor refuses anonymous access (HTTP {code})")
    elif code >= 500:
        builder.add(
            "editor",
            Status.CRITICAL,
            f"editor route fails (HTTP {code})",
            "Check the gateway logs; the editor is unusable until fixed.",
        )
    else:
        builder.add(
            "editor",
            Status.CRITICAL,
            f"editor is OPEN without credentials (HTTP {code})",
            "Anyone can reach the n8n editor (and its credentials): the gateway's basic auth is missing. Re-"
            "render and reload the Caddyfile now; rotate the n8n owner password if it was exposed.",
        )
