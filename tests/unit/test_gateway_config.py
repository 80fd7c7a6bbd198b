"""The gateway's request-target rules: which raw targets are refused, which are public, and the order of guards.

The patterns run in Caddy as CEL `matches` (Go RE2); the constructs used (`(?i:...)`, classes, anchors) mean
the same in Python's `re`, so the decisions are pinned here without a container. The real gateway is exercised
by tests/integration/test_security.py.
"""

from __future__ import annotations

import re

import pytest

from infra.model import SecretRef, SecretTransform
from infra.services.gateway import AMBIGUOUS_TARGET, PUBLIC_TARGET, render_caddyfile
from tests.unit.test_model import model_for, settings_for

AMBIGUOUS = [
    "/rest/workflows/..%2f..%2fwebhook%2fx",  # the bypass found in the review
    "/api/v1/workflows/..%2F..%2F..%2Fwebhook%2Fx",
    "/rest/workflows/%2e%2e/webhook/x",
    "/rest/workflows/%2E%2E%2fwebhook",
    "/rest/workflows/..%5cwebhook",
    "/rest/workflows/..%252f..%252fwebhook%252fx",  # double encoding
    "/webhook/x%00",
    "/webhook/x%3bjsessionid=1",
    "/webhook/x;a=b",
    "/rest;/x",
    "/webhook\\..\\rest",
    "/webhook/../rest/login",
    "/webhook/x/..",
    "/webhook/./x",
    "/./webhook/x",
    "//webhook/x",
    "/webhook//x",
    "http://localhost/webhook/x",
    "HTTPS://localhost/rest/login",
    "localhost:443",
    "*",
]
UNAMBIGUOUS = [
    "/webhook/telegram/abc-DEF_123",
    "/webhook/x?next=%2F..%2f;a",  # the query is not part of routing
    "/rest/login",
    "/",
    "/assets/index-1.2.3.js",
    "/.well-known/acme-challenge/token",
    "/healthz",
]


@pytest.mark.parametrize("target", AMBIGUOUS)
def test_ambiguous_targets_are_refused(target: str) -> None:
    assert re.search(AMBIGUOUS_TARGET, target), target


@pytest.mark.parametrize("target", UNAMBIGUOUS)
def test_plain_targets_pass(target: str) -> None:
    assert not re.search(AMBIGUOUS_TARGET, target), target


@pytest.mark.parametrize(
    ("target", "public"),
    [
        ("/webhook/telegram/abc", True),
        ("/webhook-waiting/123", True),
        ("/healthz", True),
        ("/healthz/readiness", True),
        ("/healthz?probe=1", True),
        ("/webhook/", False),
        ("/WEBHOOK/x", False),  # Caddy's path matcher is case-insensitive; the raw match is not
        ("/webhook-test/x", False),  # the editor's test webhooks stay behind auth
        ("/healthzx", False),
        ("/healthz/other", False),
        ("/rest/workflows/webhook/x", False),
        ("/%77ebhook/x", False),
        ("/", False),
    ],
)
def test_public_list_matches_the_raw_target(target: str, public: bool) -> None:
    assert bool(re.search(PUBLIC_TARGET, target)) is public


def test_guards_run_in_order_before_any_proxy() -> None:
    text = render_caddyfile(settings_for("prod"))
    order = [
        "header -Server",
        "respond @ambiguous",
        "respond @too_large",
        "request_header -X-Forwarded-*",
        "reverse_proxy @public",
        "respond @outside",
        "basicauth",
        "reverse_proxy n8n:5678 {\n\t\t\theader_down -Server",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions), order
    for header in ("Forwarded", "X-Real-IP"):
        assert f"request_header -{header}\n" in text


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_tls_listener_drops_the_banner(stack: str) -> None:
    text = render_caddyfile(settings_for(stack))
    assert "auto_https disable_redirects" in text  # Caddy's own redirects carry `Server: Caddy`
    assert "handle_errors {\n\t\theader -Server" in text
    sites = [block for block in text.split("\n\n") if block.rstrip().endswith("}") and "{\n" in block]
    site_blocks = [b for b in sites if not b.startswith("{")]
    assert len(site_blocks) == 4  # health, main, other hosts on :443, plain-HTTP redirect
    assert all("header -Server" in block for block in site_blocks)


def test_plain_http_mode_has_no_redirect_site() -> None:
    text = render_caddyfile(settings_for("dev", gateway={"tlsMode": "off", "httpPort": 8080}))
    assert "http:// {" not in text
    assert ":443 {" not in text


def test_telegram_gate_matches_the_inbound_workflows_webhook_path() -> None:
    """The gateway's Telegram gate and the Webhook node must name the same route, or Telegram gets 404s."""
    import json

    from infra.services.gateway import TELEGRAM_PREFIX
    from workflows.definitions import DEFINITIONS_DIR

    workflow = json.loads((DEFINITIONS_DIR / "messenger-inbound.json").read_text())
    paths = [n["parameters"]["path"] for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.webhook"]
    assert paths == ["telegram/%%telegramWebhookPathToken%%"]
    assert TELEGRAM_PREFIX == "/webhook/telegram/"


def test_telegram_secrets_reach_the_gateway_as_runtime_placeholders_only() -> None:
    model = model_for("dev")
    env = model.service("gateway").env_dict()
    assert env["KAIZENITY_TELEGRAM_WEBHOOK_PATH_TOKEN"] == SecretRef("telegramWebhookPathToken")
    assert env["KAIZENITY_TELEGRAM_WEBHOOK_SECRET"] == SecretRef("telegramWebhookSecret")
    text = render_caddyfile(settings_for("dev"))
    assert "{env.KAIZENITY_TELEGRAM_WEBHOOK_SECRET}" in text  # read per request: not in Caddy's autosaved config
    assert "{$KAIZENITY_TELEGRAM" not in text
    # the accepted request is rewritten to n8n's one-way internal route: the public token never reaches n8n
    assert env["KAIZENITY_TELEGRAM_N8N_PATH_TOKEN"] == SecretRef("telegramWebhookPathToken", SecretTransform.N8N_ROUTE)
    assert "rewrite @telegram_route /webhook/telegram/{env.KAIZENITY_TELEGRAM_N8N_PATH_TOKEN}" in text
    assert text.index("respond @telegram_secret_wrong") < text.index("rewrite @telegram_route")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_telegram_is_acknowledged_only_with_the_inbound_workflows_proof_of_storage(stack: str) -> None:
    """n8n answers 200 without running the Respond node for an execution with no run data (a job lost with its
    worker): the gateway turns any 2xx lacking the header messenger-inbound sets after its insert into 503."""
    import json

    from infra.services.gateway import STORED_HEADER
    from workflows.definitions import DEFINITIONS_DIR

    text = render_caddyfile(settings_for(stack))
    proxy = text[text.index("reverse_proxy @telegram_route") :]
    proxy = proxy[: proxy.index("\n\t\t}\n")]
    assert f"status 2xx\n\t\t\t\theader !{STORED_HEADER}\n" in proxy
    assert "handle_response @unconfirmed {\n\t\t\t\trespond" in proxy
    assert " 503\n" in proxy
    # after the readiness gate, before any other proxy could take the Telegram route
    assert text.index("forward_auth @webhook_call") < text.index("reverse_proxy @telegram_route")
    assert text.index("reverse_proxy @telegram_route") < text.index("reverse_proxy @public")

    workflow = json.loads((DEFINITIONS_DIR / "messenger-inbound.json").read_text())
    proving = [
        node["name"]
        for node in workflow["nodes"]
        for entry in node["parameters"].get("options", {}).get("responseHeaders", {}).get("entries", [])
        if entry["name"] == STORED_HEADER
    ]
    assert proving == ["Acknowledge after storing"]
    # reached only through the gate that passes the store function's own answer (a result with its `kind`): n8n
    # sends a throwing node's input items to the success output too (workflows/validation/conventions.py)
    connections = workflow["connections"]
    assert connections["Store update once"]["main"][0] == [{"node": "Stored?", "type": "main", "index": 0}]
    gate = workflow["nodes"][[n["name"] for n in workflow["nodes"]].index("Stored?")]
    assert gate["parameters"]["output"] == "={{ $json.result?.kind ? 0 : 1 }}"
    assert connections["Stored?"]["main"] == [
        [{"node": "Acknowledge after storing", "type": "main", "index": 0}],
        [{"node": "Refuse: not stored", "type": "main", "index": 0}],
    ]
    assert [
        s
        for s, links in connections.items()
        for out in links["main"]
        for link in out
        if link["node"] == "Acknowledge after storing"
    ] == ["Stored?"]  # nothing else leads to the proof


def test_queue_mode_sends_telegram_through_the_webhook_processors_with_the_same_proof() -> None:
    settings = settings_for("prod", n8n={"queueMode": True, "workers": 2, "webhookProcessors": 2})
    text = render_caddyfile(settings)
    telegram = text[text.index("reverse_proxy @telegram_route") :].split("\n", 1)[0]
    assert "n8n:5678" not in telegram
    assert telegram.count(":5678") == 2
    assert text.index("reverse_proxy @telegram_route") < text.index("reverse_proxy @webhooks")
