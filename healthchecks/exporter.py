"""`kaizenity health --serve HOST:PORT`: the health probes as a Prometheus exporter, blackbox_exporter style.

``GET /metrics`` runs every configured probe and answers the prometheus format (``probe_success``,
``kaizenity_probe_*``); ``GET /probe?target=NAME`` runs one probe (or a prefix, e.g. ``n8n``), as
blackbox_exporter's ``/probe?target=`` does, so Prometheus can scrape probes on different intervals. Each
scrape runs the probes afresh: no cache that could report a stale "OK" (Prometheus' scrape interval is the
schedule). Standard library only (http.server), so the exporter image needs no web framework. The exporter's
own failure to run a probe is still a 200 with ``probe_success 0``: a 500 would turn a probe failure into
``up == 0``, which the rules treat as "the exporter is down".
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from healthchecks.formats import render
from healthchecks.plan import Plan
from healthchecks.runner import run

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text exposition format 0.0.4


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``:PORT`` (all interfaces, as inside a container) into an address."""
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--serve {value!r}: expected HOST:PORT or :PORT, e.g. :9840")
    return host or "0.0.0.0", int(port)  # noqa: S104 - a container's exporter must be reachable on its network


def make_server(plan: Plan, address: tuple[str, int]) -> ThreadingHTTPServer:
    """An HTTP server answering /metrics, /probe?target= and / (a short index); 404 for anything else."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/metrics":
                self._answer(200, render(run(plan), "prometheus", plan.redactor))
            elif url.path == "/probe":
                self._probe(parse_qs(url.query).get("target", []))
            elif url.path == "/":
                self._answer(200, "kaizenity health exporter: /metrics (every probe), /probe?target=NAME\n")
            else:
                self._answer(404, f"no such path {url.path}: use /metrics or /probe?target=NAME\n")

        def _probe(self, targets: list[str]) -> None:
            names = [target for target in targets if target]
            selected = plan.select(names) if names else None
            if selected is None or not (selected.planned or selected.not_configured):
                known = sorted({item.name.split(".")[0] for item in plan.planned})
                self._answer(400, f"target must name a configured probe: one of {', '.join(known)}\n")
                return
            self._answer(200, render(run(selected), "prometheus", plan.redactor))

        def _answer(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silent per request: a scrape every 15 s would flood the container log."""

    return ThreadingHTTPServer(address, Handler)


def serve(plan: Plan, listen: str, ready: threading.Event | None = None) -> None:
    """Serve until interrupted."""
    server = make_server(plan, parse_listen(listen))
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    finally:
        server.server_close()
