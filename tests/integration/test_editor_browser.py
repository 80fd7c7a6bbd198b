"""The n8n editor in a real browser, through the gateway: what an operator does first, end to end.

A headless Chromium (Debian's package, driven by Playwright: `make browser`) passes the gateway's basic auth,
trusts nothing it should not (the internal CA is checked separately in test_security.py, so TLS errors are
ignored here), signs in to n8n as the owner, opens a seed workflow and runs it from the editor. That last step
needs n8n's push connection (a WebSocket on `/rest/push`) through Caddy: without it the editor never learns
that the execution finished. In queue mode the manual execution runs on a worker (OFFLOAD_MANUAL_EXECUTIONS_TO_
WORKERS) and its result travels worker -> Redis -> main -> WebSocket, the path most likely to break.

n8n's own front-end tests select elements by `data-test-id` (packages/testing/playwright in n8n-io/n8n).
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.local_endpoints import LocalEndpoints

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if importlib.util.find_spec("playwright") is None or not shutil.which(CHROMIUM):
    pytest.skip(
        "Chromium or Playwright missing: run `make browser` (Debian package chromium; pip playwright)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Error, Page, Request, WebSocket, sync_playwright  # noqa: E402

SEED_WORKFLOW = "Kaizenity: heartbeat"  # runs without external services: a schedule and one SQL insert
# Chromium aborts requests in flight when the host's interfaces change (a container of another test starting:
# net::ERR_NETWORK_CHANGED). That is the test host, not the product: such a navigation is retried.
NETWORK_CHANGED = "ERR_NETWORK_CHANGED"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        playwright.selectors.set_test_id_attribute("data-test-id")
        # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def editor_page(browser: Browser, stack: LocalEndpoints, *, password: str | None = None) -> Page:
    context = browser.new_context(
        http_credentials={"username": stack.editor_user, "password": password or stack.editor_password},
        ignore_https_errors=True,
    )
    context.set_default_timeout(45_000)
    return context.new_page()


def with_retries(step: Callable[[], Any], attempts: int = 3) -> Any:
    """Run one navigation again when Chromium aborted it for a host interface change."""
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except Error as error:
            if NETWORK_CHANGED not in str(error) or attempt == attempts:
                raise
            time.sleep(1)
    return None


def sign_in(page: Page, stack: LocalEndpoints) -> None:
    with_retries(lambda: page.goto(f"{stack.gateway_url}/signin", wait_until="networkidle"))
    page.get_by_test_id("emailOrLdapLoginId").locator("input").fill(stack.n8n_owner_email)
    page.get_by_test_id("password").locator("input").fill(stack.secrets["n8nOwnerPassword"])
    page.get_by_test_id("form-submit-button").click()
    page.wait_for_url("**/home/**")


@dataclass
class Traffic:
    """What one page attempt saw: push WebSockets opened, requests that failed (and why)."""

    sockets: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def socket_opened(self, socket: WebSocket) -> None:
        self.sockets.append(socket.url)

    def request_failed(self, request: Request) -> None:
        self.failures.append(request.failure or "")


def run_seed_workflow_from_the_editor(browser: Browser, stack: LocalEndpoints, attempts: int = 3) -> list[str]:
    """Sign in, open the seed workflow, run it; returns the push WebSocket URLs the page opened.

    The editor is a single-page app of some 500 modules: one module aborted by ERR_NETWORK_CHANGED leaves a page
    without its form. An attempt during which Chromium reported that is started again (a fresh context); any
    other failure is the product's and fails the test.
    """
    for attempt in range(1, attempts + 1):
        page = editor_page(browser, stack)
        seen = Traffic()
        page.on("websocket", seen.socket_opened)
        page.on("requestfailed", seen.request_failed)
        try:
            sign_in(page, stack)
            page.get_by_text(SEED_WORKFLOW, exact=True).first.click()
            page.wait_for_url("**/workflow/**")
            page.get_by_test_id("execute-workflow-button").click()
            page.get_by_text("Workflow executed successfully").wait_for()
            assert page.get_by_text("Connection lost").count() == 0
            return seen.sockets
        except Error:
            if attempt == attempts or not any(NETWORK_CHANGED in failure for failure in seen.failures):
                raise
        finally:
            page.context.close()
    raise AssertionError("unreachable")


def test_editor_asks_for_the_gateways_basic_auth_first(browser: Browser, kaizenity_stack: LocalEndpoints) -> None:
    page = editor_page(browser, kaizenity_stack, password="wrong-" + kaizenity_stack.editor_password)
    try:
        response = with_retries(lambda: page.goto(f"{kaizenity_stack.gateway_url}/signin"))
        assert response is not None
        assert response.status == 401
        assert page.get_by_test_id("emailOrLdapLoginId").count() == 0
    finally:
        page.context.close()


def test_an_operator_signs_in_and_runs_a_workflow_from_the_editor(
    browser: Browser, kaizenity_stack: LocalEndpoints
) -> None:
    sockets = run_seed_workflow_from_the_editor(browser, kaizenity_stack)
    assert any(url.startswith("wss://") and "/rest/push" in url for url in sockets), sockets


def test_in_queue_mode_the_workers_result_reaches_the_editor(
    browser: Browser, kaizenity_queue_stack: LocalEndpoints
) -> None:
    sockets = run_seed_workflow_from_the_editor(browser, kaizenity_queue_stack)
    assert any("/rest/push" in url for url in sockets), sockets
