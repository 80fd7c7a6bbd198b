"""Benchmark: time from `up` to every service healthy, against n8n alone becoming ready by itself.

    .venv/bin/python benchmarks/stack_bench.py [--runs 2]

"n8n alone" is the offline n8n image started with nothing else (its default SQLite database), ready when it
logs "Editor is now accessible via" and answers /healthz/readiness. The stack is the `ci` stack through the
local engine (PostgreSQL, n8n on PostgreSQL, gateway), ready when the last health check passes. Reports each
run and the ratio stack / n8n-alone (goal: overhead under 15 %).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

from infra import local_engine
from infra.container_runner import configure_testcontainers
from infra.docker_engine import docker_client
from infra.services import n8n
from infra.versions import offline_images


def n8n_alone_seconds() -> float:
    """Seconds from `docker run` of the n8n image alone to its readiness."""
    client = docker_client()
    name = f"kzt-bench-n8n-{secrets.token_hex(3)}"
    started = time.monotonic()
    container = client.containers.run(
        offline_images()["n8n"],
        name=name,
        detach=True,
        environment={"N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false"},
        healthcheck={
            "test": list(n8n.node_http_check(n8n.READINESS_PATH, n8n.REST_SETTINGS_PATH)),
            "interval": 500_000_000,
        },
    )
    try:
        while True:
            container.reload()
            healthy = container.attrs["State"].get("Health", {}).get("Status") == "healthy"
            if healthy:
                return time.monotonic() - started
            if container.status == "exited":
                raise RuntimeError(container.logs(tail=20).decode())
            if time.monotonic() - started > 300:
                raise TimeoutError("n8n alone not ready in 300 s")
            time.sleep(0.2)
    finally:
        container.remove(force=True, v=True)


def stack_seconds() -> tuple[float, dict[str, float]]:
    """Seconds from `up` to every service healthy, and each service's own start-to-ready time."""
    prefix = f"kzt-bench-{secrets.token_hex(3)}"
    started = time.monotonic()
    stack, _ = local_engine.start("ci", prefix=prefix, offline=True, free_ports=True, record=False)
    elapsed = time.monotonic() - started
    per_service = dict(stack.running.startup_seconds)
    stack.down()
    return elapsed, per_service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    configure_testcontainers()
    alone, stacks = [], []
    for run in range(1, args.runs + 1):
        alone.append(n8n_alone_seconds())
        total, services = stack_seconds()
        stacks.append(total)
        detail = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in services.items())
        print(f"run {run}: n8n alone {alone[-1]:.1f} s; stack up {total:.1f} s ({detail})")
    ratio = statistics.median(stacks) / statistics.median(alone)
    print(f"median n8n alone: {statistics.median(alone):.1f} s")
    print(f"median stack up:  {statistics.median(stacks):.1f} s")
    print(f"ratio stack / n8n alone: {ratio:.2f} (overhead {100 * (ratio - 1):.0f} %; goal < 15 %)")


if __name__ == "__main__":
    main()
