"""Scale check (not a timed test): a base backup of a >= 1 GB database while webhooks keep flowing.

    .venv/bin/python benchmarks/backup_scale.py [--prefix EXISTING] [--size-gb 1.0] [--rate 10]

Brings up a ci environment with the backup sidecar (unless --prefix names a running one), fills
`bench.payload` until the database is at least --size-gb, activates a one-node webhook workflow, then measures
webhook latency for a baseline window and again while `kaizenity backup` runs (pg_basebackup with a spread
checkpoint, as scheduled backups run). Pass criteria printed at the end: the backup completes, no PostgreSQL
backend was killed (server log and container OOM flag), webhook p99 during the backup within 2x of before.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import threading
import time
from typing import Any

import httpx
import psycopg

from backups.archive import Archive
from backups.backup import take_backup
from backups.target import find_target
from infra import local_engine
from infra.docker_engine import docker_client
from infra.local_state import load_state
from tests.integration.n8n_keys import n8n_test_key

WEBHOOK_PATH = "kaizenity-bench"
WORKFLOW: dict[str, Any] = {
    "name": "bench: webhook",
    "nodes": [
        {
            "id": "b1",
            "name": "Webhook",
            "type": "n8n-nodes-base.webhook",
            "typeVersion": 2,
            "position": [0, 0],
            "webhookId": "5f0c8a3e-bench-4b1e-9a5e-kaizenity001",
            "parameters": {"path": WEBHOOK_PATH, "httpMethod": "POST", "responseMode": "onReceived"},
        }
    ],
    "connections": {},
    "settings": {"saveDataSuccessExecution": "none"},
}


def fill(url: str, size_gb: float) -> float:
    """Grow the database to `size_gb` with ~1 KB rows, in 50k-row transactions; returns the size in GB."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute("CREATE TABLE IF NOT EXISTS bench.payload (id bigserial PRIMARY KEY, body text)")
        while True:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            gb = float(size[0] if size else 0) / 1e9
            print(f"database size {gb:.2f} GB", flush=True)
            if gb >= size_gb:
                return gb
            conn.execute(
                "INSERT INTO bench.payload (body) SELECT string_agg(md5(random()::text), '') "
                "FROM generate_series(1, 50000) g, generate_series(1, 30) k GROUP BY g"
            )


def activate_webhook(n8n_url: str, api_key: str) -> str:
    headers = {"X-N8N-API-KEY": api_key}
    with httpx.Client(base_url=n8n_url, headers=headers, timeout=30) as client:
        found = client.get("/api/v1/workflows", params={"name": str(WORKFLOW["name"])}).json()["data"]
        workflow_id = found[0]["id"] if found else client.post("/api/v1/workflows", json=WORKFLOW).json()["id"]
        client.post(f"/api/v1/workflows/{workflow_id}/activate").raise_for_status()
    url = f"{n8n_url}/webhook/{WEBHOOK_PATH}"
    for _ in range(60):
        if httpx.post(url, json={}, timeout=10).status_code == 200:
            return url
        time.sleep(1)
    raise RuntimeError(f"webhook {url} never answered 200")


def measure(url: str, rate: float, until: threading.Event | float) -> list[float]:
    """POST at `rate` per second until the event is set (or for that many seconds); latencies in ms.
    A failed request counts as 30 s (the client timeout): a hang must show in p99."""
    latencies: list[float] = []
    event = until if isinstance(until, threading.Event) else None
    deadline = time.monotonic() + until if isinstance(until, float) else float("inf")
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline and not (event is not None and event.is_set()):
            started = time.monotonic()
            try:
                ok = client.post(url, json={"n": len(latencies)}).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.monotonic() - started) * 1000 if ok else 30_000.0)
            time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    return latencies


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values or [0.0])[0]


def killed_backends(client: Any, container_name: str, since: int) -> list[str]:
    container = client.containers.get(container_name)
    container.reload()
    log = container.logs(since=since).decode(errors="replace")
    lines = [line for line in log.splitlines() if "was terminated by signal" in line or "terminating any other" in line]
    if container.attrs["State"].get("OOMKilled"):
        lines.append("container OOMKilled")
    return lines


def backup_under_load(
    prefix: str, endpoints: Any, url: str, size_gb: float, args: argparse.Namespace
) -> dict[str, Any]:
    """Webhook latency before and during `kaizenity backup`, and whether any backend was killed."""
    client = docker_client()
    since = int(time.time())
    before = measure(url, args.rate, args.baseline_seconds)
    done = threading.Event()
    during: list[float] = []
    sampler = threading.Thread(target=lambda: during.extend(measure(url, args.rate, done)))
    sampler.start()
    started = time.monotonic()
    try:
        made = take_backup(client, find_target(client, prefix), Archive.of_environment(client, prefix), print)
    finally:
        done.set()
        sampler.join()
    backup_s = time.monotonic() - started
    killed = killed_backends(client, endpoints.containers["postgres"], since)
    figures: dict[str, Any] = {
        "database_gb": round(size_gb, 2),
        "base_backup": made.stamp,
        "backup_seconds": round(backup_s, 1),
        "webhook_p50_ms_before": round(p(before, 50), 1),
        "webhook_p99_ms_before": round(p(before, 99), 1),
        "webhook_p50_ms_during": round(p(during, 50), 1),
        "webhook_p99_ms_during": round(p(during, 99), 1),
        "webhook_requests_during": len(during),
        "webhook_failures_during": sum(1 for v in during if v >= 30_000),
        "backends_killed": killed,
    }
    figures["p99_ratio"] = round(figures["webhook_p99_ms_during"] / max(figures["webhook_p99_ms_before"], 0.1), 2)
    figures["pass"] = not killed and figures["p99_ratio"] <= 2.0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", help="a running environment with backups enabled (else one is created)")
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=10.0, help="webhook requests per second")
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="leave a created environment running")
    parser.add_argument("--prepare-only", action="store_true", help="bring up and fill, then stop (implies --keep)")
    parser.add_argument("--prefix-to-create", help="name for the environment this run creates")
    args = parser.parse_args()
    prefix = args.prefix or args.prefix_to_create or f"kzt-bench-backup-{secrets.token_hex(3)}"
    created = args.prefix is None
    try:
        if created:
            overrides = {"backups": {"enabled": True, "intervalMinutes": 1440, "checkpoint": "spread"}}
            _, endpoints = local_engine.start(
                "ci", prefix=prefix, offline=True, free_ports=True, progress=print, overrides=overrides
            )
        else:
            loaded = load_state(prefix)
            if loaded is None:
                raise SystemExit(f"no local record of {prefix}")
            endpoints = loaded
        assert endpoints.database_url
        assert endpoints.n8n_url
        size_gb = fill(endpoints.database_url, args.size_gb)
        with n8n_test_key(endpoints) as key:
            url = activate_webhook(endpoints.n8n_url, key)
        if args.prepare_only:
            print(f"prepared {prefix}: {size_gb:.2f} GB, webhook {url}")
            return
        print(json.dumps(backup_under_load(prefix, endpoints, url, size_gb, args), indent=2))
    finally:
        if created and not (args.keep or args.prepare_only):
            local_engine.stop(prefix, print)


if __name__ == "__main__":
    main()
