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
from collections.abc import Iterator

import httpx
import pytest

from infra.local_endpoints import LocalEndpoints
from infra.model import caddy_bcrypt, internal_route_token
from infra.services.gateway import (
    STORED_HEADER,
    TELEGRAM_N8N_PATH_ENV,
    TELEGRAM_PATH_TOKEN_ENV,
    TELEGRAM_SECRET_ENV,
)
from tests.integration.stand_in_gateway import stand_in_gateway

pytestmark = pytest.mark.integration


def n8n_stand_in(readiness: tuple[int, str], everything_else: str, *, stored_header: bool = False) -> str:
    """A Caddy site answering for n8n: `/healthz/readiness` with `readiness`, every other request 200, with
    messenger-inbound's proof of storage (STORED_HEADER) when `stored_header`."""
    status, body = readiness
    proof = f"\theader {STORED_HEADER} 1\n" if stored_header else ""
    return f"""
:5678 {{
\theader -Server
{proof}\t@readiness path /healthz/readiness
\trespond @readiness `{body}` {status}
\trespond `{everything_else}` 200
}}
"""


# n8n's answers while connected but not migrated, and once ready (dist/abstract-server.js, setupHealthCheck).
STARTING_N8N = n8n_stand_in((503, '{"status":"error"}'), "n8n is starting up. Please wait")
READY_N8N = n8n_stand_in((200, '{"status":"ok"}'), "stored", stored_header=True)
# A ready n8n whose execution ended without run data (a job lost with its worker): it answers the Webhook node's
# response code, 200, even in responseNode mode (n8n 2.8.4 dist/webhooks/webhook-helpers.js, executeWebhook).
LOST_JOB_N8N = n8n_stand_in(
    (200, '{"status":"ok"}'), '{"message":"Workflow executed successfully but no data was returned"}'
)
PATH_TOKEN = secrets.token_urlsafe(24)
SECRET = secrets.token_urlsafe(24)


def gateway_in_front_of(stand_in: str, stack: LocalEndpoints, name: str) -> Iterator[httpx.Client]:
    """The stack's gateway configuration (TLS off) with `stand_in` answering for n8n, in the gateway image."""
    environment = {
        "GATEWAY_EDITOR_USER": "admin",
        "GATEWAY_EDITOR_PASSWORD_HASH": caddy_bcrypt(secrets.token_urlsafe(12), secrets.token_urlsafe(16)),
        TELEGRAM_PATH_TOKEN_ENV: PATH_TOKEN,
        TELEGRAM_SECRET_ENV: SECRET,
        TELEGRAM_N8N_PATH_ENV: internal_route_token(PATH_TOKEN),
    }
    with (
        stand_in_gateway(stack, name, stand_in, environment) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def starting(kaizenity_stack: LocalEndpoints) -> Iterator[httpx.Client]:
    yield from gateway_in_front_of(STARTING_N8N, kaizenity_stack, "starting")


@pytest.fixture(scope="module")
def lost_job(kaizenity_stack: LocalEndpoints) -> Iterator[httpx.Client]:
    yield from gateway_in_front_of(LOST_JOB_N8N, kaizenity_stack, "lost-job")


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


def test_a_telegram_update_n8n_answers_200_without_storing_is_not_acknowledged(lost_job: httpx.Client) -> None:
    """The rolling-replacement loss (issue 12/13): n8n's 200 for an execution without run data is not an
    acknowledgement; only messenger-inbound's Respond node after the insert sets the proof of storage."""
    response = telegram_update(lost_job)
    assert response.status_code == 503, response.text
    assert "no data was returned" not in response.text
    other = lost_job.post("/webhook/kaizenity-healthcheck", json={"id": 1})
    assert other.status_code == 200, "only the Telegram route requires the proof; other webhooks pass as n8n answers"
