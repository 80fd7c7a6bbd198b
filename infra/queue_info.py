"""Where a local environment's Redis is reachable from the host (for the health probes and tests)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from infra.model import EnvironmentModel


def redis_host_url(model: EnvironmentModel, secrets: Mapping[str, str]) -> str | None:
    """`redis://:<password>@127.0.0.1:<port>/0` when the model publishes Redis on a host port, else None.

    n8n uses database 0 (QUEUE_BULL_REDIS_DB default). The URL holds the password: keep it out of logs.
    """
    for service in model.services:
        if service.kind == "redis" and service.ports and "redisPassword" in secrets:
            port = service.ports[0]
            return f"redis://:{quote(secrets['redisPassword'], safe='')}@{port.host_ip}:{port.host_port}/0"
    return None
