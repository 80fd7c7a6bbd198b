"""The gateway passes webhook calls to n8n only once n8n is ready (issue 13: no acknowledged update lost).

While it starts, n8n 2.8.4 answers every request with `200 n8n is starting up. Please wait` as soon as its
database is connected and until its migrations have run (dist/abstract-server.js, setupHealthCheck), and its
`/healthz/readiness` says 503 `{"status":"error"}` meanwhile. A Telegram update posted in that window was
acknowledged and never stored (seen during a Redis-password rotation: n8n main restarts). The window is seconds
long and depends on timing, so the stand-in below reproduces n8n's answers exactly, on the upstream address the
real gateway configuration proxies to, and the real Caddy (the gateway image) runs the rendered configuration.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import docker
import httpx
import pytest

from infra.local_endpoints import LocalEndpoints
from infra.local_overrides import local_settings
from infra.model import caddy_bcrypt, internal_route_token
from infra.services.gateway import TELEGRAM_N8N_PATH_ENV, TELEGRAM_PATH_TOKEN_ENV, TELEGRAM_SECRET_ENV, render_caddyfile

pytestmark = pytest.mark.integration

# n8n's answers while connected but not migrated, and once ready (dist/abstract-server.js, setupHealthCheck).
STARTING_N8N = """
:5678 {
\theader -Server
\t@readiness path /healthz/readiness
\trespond @readiness `{"status":"error"}` 503
\trespond "n8n is starting up. Please wait" 200
}
"""
READY_N8N = """
:5678 {
\theader -Server
\t@readiness path /healthz/readiness
\trespond @readiness `{"status":"ok"}` 200
\trespond "stored" 200
}
"""
PATH_TOKEN = secrets.token_urlsafe(24)
SECRET = secrets.token_urlsafe(24)


def gateway_in_front_of(stand_in: str, stack: LocalEndpoints, name: str) -> Iterator[httpx.Client]:
    """The stack's gateway configuration (TLS off) with `stand_in` answering for n8n, in the gateway image."""
    settings = local_settings(
        "ci", prefix=f"{stack.prefix}-{name}", offline=True, free_ports=True, secrets=stack.secrets
    )
    gateway = settings.gateway.model_copy(update={"tls_mode": type(settings.gateway.tls_mode)("off")})
    caddyfile = render_caddyfile(settings.model_copy(update={"gateway": gateway})) + stand_in
    container_name = f"{stack.prefix}-{name}-gateway"
    container = docker.from_env().containers.create(
        settings.images.gateway,
        name=container_name,
        command=[
            "sh",
            "-c",
            'printf "%s" "$CADDYFILE" > /tmp/Caddyfile && exec caddy run --config /tmp/Caddyfile --adapter caddyfile',
        ],
        environment={
            "CADDYFILE": caddyfile,
            "GATEWAY_EDITOR_USER": "admin",
            "GATEWAY_EDITOR_PASSWORD_HASH": caddy_bcrypt(secrets.token_urlsafe(12), secrets.token_urlsafe(16)),
            TELEGRAM_PATH_TOKEN_ENV: PATH_TOKEN,
            TELEGRAM_SECRET_ENV: SECRET,
            TELEGRAM_N8N_PATH_ENV: internal_route_token(PATH_TOKEN),
        },
        extra_hosts={"n8n": "127.0.0.1"},
        ports={"80/tcp": ("127.0.0.1", None)},
        labels={"kaizenity.test": container_name},
    )
    try:
        container.start()
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_answering(client)
            yield client
    finally:
        container.remove(force=True, v=True)  # and the image's anonymous /data, /config volumes


def wait_until_answering(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.get("/_gateway/healthz")  # not served on :80: any answer means Caddy listens
            return
        except httpx.TransportError:
            time.sleep(0.3)
    pytest.fail("the test gateway did not come up in 30 s")


@pytest.fixture(scope="module")
def starting(kaizenity_stack: LocalEndpoints) -> Iterator[httpx.Client]:
    yield from gateway_in_front_of(STARTING_N8N, kaizenity_stack, "starting")


@pytest.fixture(scope="module")
def ready(kaizenity_stack: LocalEndpoints) -> Iterator[httpx.Client]:
    yield from gateway_in_front_of(READY_N8N, kaizenity_stack, "ready")


def telegram_update(client: httpx.Client) -> httpx.Response:
    return client.post(
        f"/webhook/telegram/{PATH_TOKEN}",
        json={"update_id": 892134, "message": {"message_id": 1, "chat": {"id": 1}, "text": "hi"}},
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )


@pytest.mark.parametrize("path", ["/webhook/kaizenity-healthcheck", "/webhook-waiting/123", "/webhook/x/y"])
def test_a_webhook_call_while_n8n_starts_gets_503_not_n8ns_200(starting: httpx.Client, path: str) -> None:
    response = starting.post(path, json={"id": 1})
    assert response.status_code == 503, response.text
    assert "starting up" not in response.text


def test_a_telegram_update_while_n8n_starts_is_not_acknowledged(starting: httpx.Client) -> None:
    """Telegram redelivers on any non-2xx answer (Bot API setWebhook docs): the update is kept, not lost."""
    response = telegram_update(starting)
    assert response.status_code == 503, response.text


def test_n8ns_own_health_still_answers_while_it_starts(starting: httpx.Client) -> None:
    """Monitoring must keep seeing n8n's own readiness through the gateway: health is not gated."""
    assert starting.get("/healthz/readiness").status_code == 503
    assert starting.get("/healthz").status_code == 200


def test_once_n8n_is_ready_webhook_calls_pass_with_their_body(ready: httpx.Client) -> None:
    response = telegram_update(ready)
    assert (response.status_code, response.text) == (200, "stored")
    plain = ready.post("/webhook/kaizenity-healthcheck", json={"id": 1})
    assert (plain.status_code, plain.text) == (200, "stored")
