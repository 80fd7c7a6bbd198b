"""The Caddy gateway: public webhooks, the editor behind basic auth (and an optional IP allow-list), TLS.

The Caddyfile is rendered here from settings and uses only directives Caddy 2.6 understands (the offline image
carries Debian's Caddy 2.6.2; the official image is newer and still accepts them). Secrets reach Caddy as
environment variables (`{$VAR}` is substituted when the Caddyfile is adapted), so the file itself holds none.
"""

from __future__ import annotations

from infra.model import (
    FileUpload,
    HealthCheck,
    PortBinding,
    SecretRef,
    SecretTransform,
    ServiceSpec,
    VolumeMount,
)
from infra.services import n8n
from infra.services.common import container_name, labels
from infra.settings import Settings, TlsMode

NAME = "gateway"
# Inside the caddy-config volume: the root filesystem is read-only, and Docker copies uploads into a read-only
# container only where a volume is mounted.
CADDYFILE = "/config/Caddyfile"
HEALTH_PORT = 2020  # an internal listener for the container's own health check: never published
HEALTH_PATH = "/_gateway/healthz"
# Caddy's Prometheus metrics, on the same internal listener (monitoring's `gateway` scrape job). The `metrics`
# handler directive exists in Caddy 2.6 and 2.10 alike; it serves Caddy's registry: process, config reloads,
# admin API, reverse-proxy upstreams and (Caddy < 2.8, where they are always on) HTTP request metrics. Caddy 2.8+
# counts requests only with the `metrics` global option, which 2.6 (the offline image) rejects: not rendered.
METRICS_PATH = "/metrics"
DATA_DIR = "/data"  # XDG_DATA_HOME: certificates, ACME account, the local CA
LOCAL_CA_FILE = f"{DATA_DIR}/caddy/pki/authorities/local/root.crt"  # `tls internal`: Caddy's own root CA
# Routes n8n must serve to the world: production webhooks, Wait-node resumptions, n8n's own health. Matched on
# the RAW request target (see AMBIGUOUS_TARGET), case-sensitively: everything else is the editor's.
PUBLIC_PATHS = ("/webhook/*", "/webhook-waiting/*", "/healthz", "/healthz/readiness")
PUBLIC_TARGET = r"^(?:/(?:webhook|webhook-waiting)/[^?]|/healthz(?:/readiness)?(?:\?|$))"
WEBHOOK_TARGET = r"^/(?:webhook|webhook-waiting)/"  # the public routes that run workflows (not n8n's health)
# A request target whose meaning depends on who decodes it. Caddy's `path` matcher decodes and cleans the path
# (caddyhttp MatchPath) but reverse_proxy forwards the raw target, so `/rest/x/..%2f..%2fwebhook%2fy` matched the
# public `/webhook/*` while n8n routed it to `/rest/x/:id`. Refused before any handler, on the raw target
# (`{http.request.orig_uri}` is the request line's target, caddyhttp/replacer.go), path part only:
#   not origin-form (absolute-form `http://h/p`, authority-form, `*`); an encoded `/` `\` `.` `%` NUL or `;`
#   (any case, so also double encoding `%252f`); a raw backslash; a `;` path parameter; `//`; a `.`/`..` segment.
AMBIGUOUS_TARGET = r"^(?:[^/]|[^?]*(?:%(?i:2f|5c|2e|25|00|3b)|\\|;|//|/\.\.?(?:/|\?|$)))"
# The Telegram webhook (workflows/definitions/messenger-inbound.json: path `telegram/<telegramWebhookPathToken>`).
TELEGRAM_PREFIX = "/webhook/telegram/"
TELEGRAM_PATH_TOKEN_ENV = "KAIZENITY_TELEGRAM_WEBHOOK_PATH_TOKEN"  # noqa: S105 - a variable name
TELEGRAM_N8N_PATH_ENV = "KAIZENITY_TELEGRAM_N8N_PATH_TOKEN"
TELEGRAM_SECRET_ENV = "KAIZENITY_TELEGRAM_WEBHOOK_SECRET"  # noqa: S105 - a variable name
# Set by messenger-inbound's "Acknowledge after storing" node, and only there: the proof that the update is stored.
STORED_HEADER = "X-Kaizenity-Stored"
# Client-supplied forwarding headers: n8n (N8N_PROXY_HOPS=1) must see only what the gateway itself sets.
CLIENT_FORWARDING_HEADERS = ("Forwarded", "X-Real-IP", "X-Forwarded-*", "X-Original-URL", "X-Rewrite-URL")


def render_caddyfile(settings: Settings) -> str:
    """The whole gateway configuration, as Caddyfile text.

    Every answer goes through one ordered `route` (refuse ambiguous targets, refuse oversized bodies, strip
    client forwarding headers, then public list, else allow-list + basic auth: default deny) and the errors
    through `handle_errors`, each dropping the `Server` banner Caddy sets on every response. With TLS, two more
    sites answer what the main one does not: other Host names on :443 (421) and plain HTTP (a redirect).
    """
    gw = settings.gateway
    upstream = f"{n8n.NAME}:{n8n.PORT}"
    lines = [
        *_global_options(settings),
        "",
        f":{HEALTH_PORT} {{",
        "\troute {",
        "\t\theader -Server",
        f'\t\trespond {HEALTH_PATH} "OK" 200',
        f"\t\tmetrics {METRICS_PATH}",
        "\t}",
        "}",
        "",
        f"{_site_address(settings)} {{",
        *(["\ttls internal"] if gw.tls_mode is TlsMode.INTERNAL else []),
        "\troute {",
        "\t\theader -Server",
        f"\t\t@ambiguous expression `{{http.request.orig_uri}}.matches(r'{AMBIGUOUS_TARGET}')`",
        '\t\trespond @ambiguous "Bad Request: ambiguous request target" 400',
        *_body_limit(gw.body_limit_mb),
        *[f"\t\trequest_header -{name}" for name in CLIENT_FORWARDING_HEADERS],
        f"\t\t@gateway_health expression `{{http.request.orig_uri}} == '{HEALTH_PATH}'`",
        '\t\trespond @gateway_health "OK" 200',
        *_telegram_gate(),
        *_readiness_gate(upstream),
        *_telegram_proxy(settings, upstream),
        *_webhook_processors_route(settings),
        f"\t\t@public expression `{{http.request.orig_uri}}.matches(r'{PUBLIC_TARGET}')`",
        *_proxy(upstream, "@public "),
        *_editor_guard(settings),
        *_proxy(upstream),
        "\t}",
        "\thandle_errors {",
        "\t\theader -Server",
        '\t\trespond "{http.error.status_code} {http.error.status_text}"',
        "\t}",
        "}",
        "",
    ]
    if gw.tls_mode is not TlsMode.OFF:
        lines += _fallback_sites()
    return "\n".join(lines)


def _telegram_gate() -> list[str]:
    """Only Telegram itself reaches n8n's Telegram webhook: exact path token and the secret header, else the
    gateway answers (404 / 403) without n8n ever seeing the request.

    n8n logs the request path of every failed webhook request ("Received request for unknown webhook" for
    `/webhook/telegram/<token>x`, "Error in handling webhook request POST /webhook/telegram/<token>: Failed to
    parse request body" for a malformed body: n8n dist/webhooks/webhook-request-handler.js), so the path token
    reached the logs whenever anyone sent a near-miss. `{env.*}` placeholders are read per request, so the
    secrets stay out of the adapted config Caddy autosaves to /config. (CEL `==` is not constant-time; the
    path token and the secret are 32 random characters each.) The accepted request is then rewritten to the
    internal route n8n registers (`internal_route_token`, a one-way function of the token), so the public
    token is in neither n8n's logs nor its database; the public list still matches the original target.
    """
    uri, secret = "{http.request.orig_uri}", "{http.request.header.X-Telegram-Bot-Api-Secret-Token}"
    route = f"'{TELEGRAM_PREFIX}' + {{env.{TELEGRAM_PATH_TOKEN_ENV}}}"
    return [
        f"\t\t@telegram_path_wrong expression `{uri}.startsWith('{TELEGRAM_PREFIX}') && {uri} != {route}`",
        '\t\trespond @telegram_path_wrong "Not Found" 404',
        f"\t\t@telegram_secret_wrong expression `{uri} == {route} && {secret} != {{env.{TELEGRAM_SECRET_ENV}}}`",
        '\t\trespond @telegram_secret_wrong "Forbidden" 403',
        f"\t\t@telegram_route expression `{uri} == {route}`",
        f"\t\trewrite @telegram_route {TELEGRAM_PREFIX}{{env.{TELEGRAM_N8N_PATH_ENV}}}",
    ]


def _readiness_gate(upstream: str) -> list[str]:
    """Webhook calls reach n8n only once it is ready; before that the caller gets 503 and sends again.

    While it starts, n8n 2.8.4 answers EVERY request (webhooks included) with `200 n8n is starting up. Please
    wait` once its database is connected but not yet migrated (dist/abstract-server.js, setupHealthCheck): a
    Telegram update posted then is acknowledged and never stored (seen in a Redis-password rotation: update
    892134, 200 after 0.1 s, lost). Its `/healthz/readiness` says 503 until connected and migrated, so
    `forward_auth` asks it first, per webhook call (a GET without the body, which stays for the real request),
    and passes any non-2xx answer back. After migration, a webhook n8n has not registered yet gets n8n's 404,
    which callers retry too.
    """
    return [
        f"\t\t@webhook_call expression `{{http.request.orig_uri}}.matches(r'{WEBHOOK_TARGET}')`",
        f"\t\tforward_auth @webhook_call {upstream} {{",
        f"\t\t\turi {n8n.READINESS_PATH}",
        "\t\t}",
    ]


def _proxy(upstream: str, matcher: str = "") -> list[str]:
    """reverse_proxy to n8n, dropping any `Server` header the upstream adds (`header -Server` ran before it)."""
    return [f"\t\treverse_proxy {matcher}{upstream} {{", "\t\t\theader_down -Server", "\t\t}"]


def _fallback_sites() -> list[str]:
    """Answers, without a banner, what the main site does not match.

    Another Host on :443 (the certificate's SNI but a different Host header) gets 421; plain HTTP gets a
    redirect to HTTPS. Caddy's own automatic redirects are disabled (`auto_https disable_redirects`) because
    they answer with `Server: Caddy`; ACME HTTP-01 challenges are answered by the TLS app before any route.
    """
    return [
        ":443 {",
        "\troute {",
        "\t\theader -Server",
        '\t\trespond "Misdirected Request" 421',
        "\t}",
        "}",
        "",
        "http:// {",
        "\troute {",
        "\t\theader -Server",
        "\t\tredir https://{host}{uri} 308",
        "\t}",
        "}",
        "",
    ]


def _telegram_proxy(settings: Settings, upstream: str) -> list[str]:
    """Telegram is acknowledged (2xx) only with messenger-inbound's proof that the update is stored.

    n8n itself answers 2xx without the Respond node's answer in paths the workflow cannot change (n8n 2.8.4):
    an execution that ends without run data gets the Webhook node's response code, 200 by default and not
    settable in `responseNode` mode, with "Workflow executed successfully but no data was returned"
    (dist/webhooks/webhook-helpers.js, executeWebhook); in queue mode a `job-finished` message that reaches the
    main process before the worker's `respond-to-webhook` resolves the response with `{}`, an empty 200
    (dist/scaling/scaling.service.js, registerMainOrWebhookListeners); a starting n8n answers 200 "n8n is
    starting up" (see _readiness_gate). Telegram never redelivers an acknowledged update, so any 2xx without
    STORED_HEADER becomes 503 and Telegram sends the update again (stored once by update_id).
    """
    upstreams = " ".join(_webhook_upstreams(settings)) or upstream
    return [
        f"\t\treverse_proxy @telegram_route {upstreams} {{",
        *_balancing(settings),
        "\t\t\t@unconfirmed {",
        "\t\t\t\tstatus 2xx",
        f"\t\t\t\theader !{STORED_HEADER}",
        "\t\t\t}",
        "\t\t\thandle_response @unconfirmed {",
        '\t\t\t\trespond "Service Unavailable: n8n did not confirm the update was stored" 503',
        "\t\t\t}",
        "\t\t\theader_down -Server",
        "\t\t}",
    ]


def _webhook_upstreams(settings: Settings) -> list[str]:
    """The `n8n webhook` processors as Caddy upstreams (`name:port`); none outside queue mode."""
    return [f"{spec.name}:{n8n.PORT}" for spec in n8n.build_webhook_processors(settings)]


def _webhook_processors_route(settings: Settings) -> list[str]:
    """Production webhooks to the `n8n webhook` processes when the stack has any (queue mode), else nothing.

    Inside the main `route`, after the ambiguity refusal and the Telegram gate, matched on the raw target like
    the public list, so the same request can never be judged by two different path readings.
    """
    upstreams = " ".join(_webhook_upstreams(settings))
    if not upstreams:
        return []
    return [
        "\t\t@webhooks expression `{http.request.orig_uri}.startsWith('/webhook/')`",
        f"\t\treverse_proxy @webhooks {upstreams} {{",
        *_balancing(settings),
        "\t\t\theader_down -Server",
        "\t\t}",
    ]


def _balancing(settings: Settings) -> list[str]:
    """Round robin over the webhook processors, skipping any that is not ready; nothing with one upstream.

    A processor that is (re)starting answers `200 n8n is starting up` like the main process (see
    _readiness_gate): it takes traffic only after its readiness check passes, and a refused connection takes it
    out for 10 s, so round robin tries the next one.
    """
    if not _webhook_upstreams(settings):
        return []
    return [
        "\t\t\tlb_policy round_robin",
        "\t\t\tlb_try_duration 5s",
        f"\t\t\thealth_uri {n8n.READINESS_PATH}",
        "\t\t\thealth_interval 2s",
        "\t\t\thealth_timeout 2s",
        "\t\t\tfail_duration 10s",
    ]


def _global_options(settings: Settings) -> list[str]:
    gw = settings.gateway
    options = ["{", "\tadmin localhost:2019"]
    if gw.tls_mode is TlsMode.INTERNAL:
        options.append("\tskip_install_trust")
    if gw.tls_mode is TlsMode.ACME and gw.acme_email:
        options.append(f"\temail {gw.acme_email}")
    if gw.tls_mode is TlsMode.OFF:
        options.append("\tauto_https off")
    else:
        options.append("\tauto_https disable_redirects")
    # HTTP/3 would need a published UDP port: serve HTTP/1.1 and HTTP/2 only.
    options += ["\tservers {", "\t\tprotocols h1 h2", "\t}", "}"]
    return options


def _body_limit(limit_mb: int) -> list[str]:
    """Refuse oversized bodies with 413 before proxying.

    `request_body` alone only caps what the upstream reads: n8n answers an unknown webhook without reading the
    body, and a proxied read past the cap surfaces as a 502. The Content-Length check answers 413 at once;
    `request_body` still caps chunked uploads, which carry no length.
    """
    limit = limit_mb * 1024 * 1024
    length = "{http.request.header.Content-Length}"
    return [
        f'\t\t@too_large expression `{length} != "" && int({length}) > {limit}`',
        '\t\trespond @too_large "Request body too large" 413',
        "\t\trequest_body {",
        f"\t\t\tmax_size {limit_mb}MiB",
        "\t\t}",
    ]


def _site_address(settings: Settings) -> str:
    gw = settings.gateway
    if gw.tls_mode is TlsMode.OFF:
        return ":80"
    return f"https://{gw.domain}"


def _editor_guard(settings: Settings) -> list[str]:
    """The default: everything not public needs the allow-list (if any) and basic auth.

    `remote_ip` reads the TCP peer only (no `forwarded` option), so a client's X-Forwarded-For cannot satisfy it.
    """
    lines = []
    cidrs = settings.gateway.editor_allowed_cidrs
    if cidrs:
        lines += [f"\t\t@outside not remote_ip {' '.join(cidrs)}", '\t\trespond @outside "Forbidden" 403']
    lines += [
        '\t\tbasicauth bcrypt "Kaizenity n8n editor" {',
        "\t\t\t{$GATEWAY_EDITOR_USER} {$GATEWAY_EDITOR_PASSWORD_HASH}",
        "\t\t}",
    ]
    return lines


def build(settings: Settings) -> ServiceSpec:
    """The gateway container: the one service that may listen beyond loopback."""
    gw = settings.gateway
    ports = [PortBinding(80, gw.http_port, gw.bind_address, setting="gateway.httpPort")]
    if gw.tls_mode is not TlsMode.OFF:
        ports.append(PortBinding(443, gw.https_port, gw.bind_address, setting="gateway.httpsPort"))
    return ServiceSpec(
        name=NAME,
        kind="gateway",
        container_name=container_name(settings, NAME),
        image=settings.images.gateway,
        command=("caddy", "run", "--config", CADDYFILE, "--adapter", "caddyfile"),
        env=(
            ("GATEWAY_EDITOR_USER", gw.editor_user),
            (
                "GATEWAY_EDITOR_PASSWORD_HASH",
                SecretRef("gatewayEditorPassword", SecretTransform.CADDY_BCRYPT, salt_key="gatewayEditorPasswordSalt"),
            ),
            (TELEGRAM_PATH_TOKEN_ENV, SecretRef("telegramWebhookPathToken")),
            (TELEGRAM_SECRET_ENV, SecretRef("telegramWebhookSecret")),
            (TELEGRAM_N8N_PATH_ENV, SecretRef("telegramWebhookPathToken", SecretTransform.N8N_ROUTE)),
            ("XDG_CONFIG_HOME", "/config"),
            ("XDG_DATA_HOME", DATA_DIR),
        ),
        ports=tuple(ports),
        mounts=(VolumeMount("caddy-data", DATA_DIR), VolumeMount("caddy-config", "/config")),
        uploads=(FileUpload(CADDYFILE, render_caddyfile(settings)),),
        # Caddy writes only to /data (certificates) and /config (autosave): everything else stays read-only.
        read_only_rootfs=True,
        tmpfs=(("/tmp", "size=16m,mode=1777"),),  # noqa: S108 - a container-private tmpfs, not a host path
        healthcheck=HealthCheck(
            test=("CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{HEALTH_PORT}{HEALTH_PATH}"),
            interval_s=3,
            retries=20,
            start_period_s=3,
        ),
        restart=settings.restart_policy,
        memory_mb=gw.memory_mb,
        cap_add=("NET_BIND_SERVICE",),
        aliases=(NAME,),
        # No dependency on n8n: Caddy resolves its upstream per request (502 until n8n is ready), so the gateway
        # starts alongside PostgreSQL instead of after n8n.
        labels=labels(settings, NAME),
    )
