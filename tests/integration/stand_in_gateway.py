"""The stack's real gateway configuration, in the gateway image, in front of a stand-in for n8n.

For what a running n8n cannot be made to do on cue (answer as it does while starting, echo the headers it was
sent): the configuration is rendered from the stack's settings with TLS off, and the stand-in is a Caddy site on
the container's own :5678, where `n8n` resolves. The container is published on a free loopback port and removed
with its anonymous volumes (the image declares /data and /config).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import docker
import httpx
import pytest

from infra.local_endpoints import LocalEndpoints
from infra.local_overrides import local_settings
from infra.services.gateway import render_caddyfile

START = 'printf "%s" "$CADDYFILE" > /tmp/Caddyfile && exec caddy run --config /tmp/Caddyfile --adapter caddyfile'


@contextmanager
def stand_in_gateway(
    stack: LocalEndpoints, name: str, stand_in: str, environment: Mapping[str, str], **gateway: Any
) -> Iterator[int]:
    """Yields the gateway's loopback port once Caddy listens. `gateway` updates the gateway settings."""
    settings = local_settings(
        "ci", prefix=f"{stack.prefix}-{name}", offline=True, free_ports=True, secrets=stack.secrets
    )
    tls_off = type(settings.gateway.tls_mode)("off")
    updated = settings.gateway.model_copy(update={"tls_mode": tls_off, **gateway})
    caddyfile = render_caddyfile(settings.model_copy(update={"gateway": updated})) + stand_in
    container_name = f"{stack.prefix}-{name}-gateway"
    container = docker.from_env().containers.create(
        settings.images.gateway,
        name=container_name,
        command=["sh", "-c", START],
        environment={"CADDYFILE": caddyfile, **environment},
        extra_hosts={"n8n": "127.0.0.1"},
        ports={"80/tcp": ("127.0.0.1", None)},
        labels={"kaizenity.test": container_name},
    )
    try:
        container.start()
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        _wait_until_listening(port, container_name)
        yield port
    finally:
        container.remove(force=True, v=True)


def _wait_until_listening(port: int, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_gateway/healthz", timeout=2)  # any answer: Caddy listens
            return
        except httpx.TransportError:
            time.sleep(0.3)
    pytest.fail(f"the test gateway {name} did not come up in 30 s")
