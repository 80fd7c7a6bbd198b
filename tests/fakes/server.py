"""The fake HTTP server every API fake builds on: routing, faults, request log, clean shutdown."""

from __future__ import annotations

import enum
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

HANG_SECONDS = 30.0


class Fault(enum.Enum):
    """What the fake does instead of answering normally."""

    NONE = "none"
    HANG = "hang"
    REFUSED = "refused"
    UNAUTHORIZED = "401"
    FORBIDDEN = "403"
    NOT_FOUND = "404"
    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    MALFORMED_JSON = "malformed_json"
    WRONG_CONTENT_TYPE = "wrong_content_type"


FAULTS = tuple(fault for fault in Fault if fault is not Fault.NONE)
STATUS_FAULTS = {
    Fault.UNAUTHORIZED: 401,
    Fault.FORBIDDEN: 403,
    Fault.NOT_FOUND: 404,
    Fault.RATE_LIMITED: 429,
    Fault.SERVER_ERROR: 500,
    Fault.BAD_GATEWAY: 502,
}


@dataclass
class Response:
    """One canned answer: JSON for dict/list bodies, raw text otherwise."""

    status: int = 200
    body: Any = None
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode()
        return str(self.body or "").encode()


@dataclass(frozen=True)
class Request:
    """What the fake received, for assertions (method, path, query, headers, body)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class FakeApi:
    """Base class: subclasses implement :meth:`route` and :meth:`error` in their API's own shapes.

    ``fault`` switches the whole server into a failure; ``fault_count`` limits it to the first N requests
    (then it recovers), which is how retry behaviour is tested.
    """

    prefix = ""

    def __init__(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.fault = Fault.NONE
        self.fault_count: int | None = None
        self.retry_after = 30
        self.delay = 0.0  # seconds added to every answer (benchmarks: a realistic API round trip)
        self.requests: list[Request] = []
        self._tls = tls
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._closed_port = _closed_port()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Where the probe should point: a closed port while the REFUSED fault is on."""
        scheme = "https" if self._tls else "http"
        port = self._closed_port if self.fault is Fault.REFUSED else self.port
        return f"{scheme}://{self.host}:{port}{self.prefix}"

    def route(self, request: Request) -> Response:
        """The API's normal answer to a request."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        """The API's error envelope for ``status``."""
        return Response(status, {"error": message})

    def answer(self, request: Request) -> Response | None:
        """Fault or route; None means hang."""
        self.requests.append(request)
        if self.delay:
            self._stop.wait(self.delay)
        fault = self._active_fault()
        if fault is Fault.HANG:
            return None
        if fault in STATUS_FAULTS:
            response = self.error(STATUS_FAULTS[fault], f"fault {fault.value}")
            if fault is Fault.RATE_LIMITED:
                response.headers.setdefault("Retry-After", str(self.retry_after))
            return response
        if fault is Fault.MALFORMED_JSON:
            return Response(200, '{"ok": true, "result": {"truncated')
        if fault is Fault.WRONG_CONTENT_TYPE:
            return Response(200, "<html><body>Proxy login</body></html>", "text/html; charset=utf-8")
        return self.route(request)

    def _active_fault(self) -> Fault:
        with self._lock:
            if self.fault_count is not None:
                if self.fault_count <= 0:
                    return Fault.NONE
                self.fault_count -= 1
            return self.fault

    def hang(self) -> None:
        self._stop.wait(HANG_SECONDS)


def _closed_port() -> int:
    """A port nothing listens on (bound then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _handler_for(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests assert on behaviour, not on access logs."""

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {key.lower(): value for key, value in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            response = api.answer(request)
            if response is None:
                api.hang()
                self.close_connection = True
                return
            payload = response.payload()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    return Handler
