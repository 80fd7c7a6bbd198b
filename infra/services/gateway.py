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
CADDYFILE = "/etc/caddy/Caddyfile"
HEALTH_PORT = 2020  # an internal listener for the container's own health check: never published
HEALTH_PATH = "/_gateway/healthz"
DATA_DIR = "/data"  # XDG_DATA_HOME: certificates, ACME account, the local CA
LOCAL_CA_FILE = f"{DATA_DIR}/caddy/pki/authorities/local/root.crt"  # `tls internal`: Caddy's own root CA
# Routes n8n must serve to the world: production webhooks, Wait-node resumptions, n8n's own health.
PUBLIC_PATHS = ("/webhook/*", "/webhook-waiting/*", "/healthz", "/healthz/readiness")


def render_caddyfile(settings: Settings) -> str:
    """The whole gateway configuration, as Caddyfile text."""
    gw = settings.gateway
    upstream = f"{n8n.NAME}:{n8n.PORT}"
    return "\n".join(
        [
            *_global_options(settings),
            "",
            f":{HEALTH_PORT} {{",
            f'\trespond {HEALTH_PATH} "OK" 200',
            "}",
            "",
            f"{_site_address(settings)} {{",
            *(["\ttls internal"] if gw.tls_mode is TlsMode.INTERNAL else []),
            *_body_limit(gw.body_limit_mb),
            "\theader -Server",
            f"\thandle {HEALTH_PATH} {{",
            '\t\trespond "OK" 200',
            "\t}",
            f"\t@public path {' '.join(PUBLIC_PATHS)}",
            "\thandle @public {",
            f"\t\treverse_proxy {upstream}",
            "\t}",
            "\thandle {",
            *_editor_guard(settings),
            f"\t\treverse_proxy {upstream}",
            "\t}",
            "}",
            "",
        ]
    )


def _global_options(settings: Settings) -> list[str]:
    gw = settings.gateway
    options = ["{", "\tadmin localhost:2019"]
    if gw.tls_mode is TlsMode.INTERNAL:
        options.append("\tskip_install_trust")
    if gw.tls_mode is TlsMode.ACME and gw.acme_email:
        options.append(f"\temail {gw.acme_email}")
    if gw.tls_mode is TlsMode.OFF:
        options.append("\tauto_https off")
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
        "\trequest_body {",
        f"\t\tmax_size {limit_mb}MiB",
        "\t}",
        f'\t@too_large expression `{length} != "" && int({length}) > {limit}`',
        "\thandle @too_large {",  # a handle (not a bare respond): handle blocks run before respond
        '\t\trespond "Request body too large" 413',
        "\t}",
    ]


def _site_address(settings: Settings) -> str:
    gw = settings.gateway
    if gw.tls_mode is TlsMode.OFF:
        return ":80"
    if gw.tls_mode is TlsMode.INTERNAL:
        return f"https://{gw.domain}"
    return gw.domain


def _editor_guard(settings: Settings) -> list[str]:
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
                SecretRef("gatewayEditorPassword", SecretTransform.CADDY_BCRYPT),
            ),
            ("XDG_CONFIG_HOME", "/config"),
            ("XDG_DATA_HOME", DATA_DIR),
        ),
        ports=tuple(ports),
        mounts=(VolumeMount("caddy-data", DATA_DIR), VolumeMount("caddy-config", "/config")),
        uploads=(FileUpload(CADDYFILE, render_caddyfile(settings)),),
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
