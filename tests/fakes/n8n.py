"""n8n and the Caddy gateway in front of it, as far as the health probes see them.

``/healthz`` (always 200 while the process runs), ``/healthz/readiness`` (503 ``{"status":"error"}`` while the
database is down), ``/metrics`` (only with N8N_METRICS), and the public API's ``/api/v1/workflows`` and
``/api/v1/executions`` (``X-N8N-API-KEY``; ``{data, nextCursor}`` pages). With ``editor_user`` set it behaves
like the gateway: everything but webhooks and health routes needs basic auth.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeApi, Request, Response


class N8nFake(FakeApi):
    """Workflows and failed executions are plain lists the tests edit."""

    def __init__(self, api_key: str = "n8n-api-key-secret", *, gateway: bool = False, tls: Any = None) -> None:
        super().__init__(tls)
        self.api_key = api_key
        self.gateway = gateway
        self.ready = True
        self.metrics = True
        self.upstream_down = False
        self.webhook_route = True  # False: the gateway has no /webhook/* route (its own empty 404)
        self.workflows: list[dict[str, Any]] = [
            {"id": "hb00000000000001", "name": "Heartbeat", "active": True},
            {"id": "tg00000000000001", "name": "Telegram intake", "active": True},
        ]
        self.failed_executions: list[dict[str, Any]] = []

    def error(self, status: int, message: str) -> Response:
        return Response(status, {"message": message})

    def route(self, request: Request) -> Response:
        path = request.path
        if self.gateway and self.upstream_down and path != "/_gateway/healthz":
            return Response(502, "", "text/plain")
        public = self._public(path)
        if public is not None:
            return public
        if self.gateway and "authorization" not in request.headers:
            return Response(401, "", "text/plain", {"WWW-Authenticate": 'Basic realm="restricted"'})
        if path == "/metrics" and self.metrics:
            active = sum(1 for item in self.workflows if item["active"])
            text = f'n8n_version_info{{version="2.8.4"}} 1\nn8n_active_workflow_count {active}\n'
            return Response(200, text, "text/plain; version=0.0.4")
        if path.startswith("/api/v1/"):
            return self._api(request, path.removeprefix("/api/v1/"))
        return Response(200, "<html>n8n editor</html>", "text/html")

    def _public(self, path: str) -> Response | None:
        """Routes the gateway passes without credentials: webhooks and health."""
        if path.startswith("/webhook/"):
            if not self.webhook_route:
                return Response(404, "", "text/plain")
            return self.error(404, "The requested webhook is not registered.")
        if path == "/healthz":
            return Response(200, {"status": "ok"})
        if path == "/healthz/readiness":
            return Response(200, {"status": "ok"}) if self.ready else Response(503, {"status": "error"})
        return None

    def _api(self, request: Request, path: str) -> Response:
        if request.headers.get("x-n8n-api-key") != self.api_key:
            return Response(401, {"message": "'X-N8N-API-KEY' header required"})
        if path == "workflows":
            return Response(200, {"data": self.workflows, "nextCursor": None})
        if path == "executions":
            return Response(200, {"data": self.failed_executions, "nextCursor": None})
        return self.error(404, "not found")
