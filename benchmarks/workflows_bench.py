"""Benchmark of the seed workflows on a real stack (ci stack, local engine):

    .venv/bin/python benchmarks/workflows_bench.py [--runs 5] [--updates 300] [--concurrency 8]

1. Re-seed no-op time (n8n already seeded; goal < 1 s).
2. Inbound webhook throughput: Telegram-shaped updates POSTed through the gateway (TLS, Caddy) to the
   messenger-inbound workflow, `--concurrency` at a time; requests/s until every 200, then seconds until every
   row is in ops.messages.
"""

from __future__ import annotations

import argparse
import secrets
import ssl
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra import local_engine
from infra.container_runner import configure_testcontainers
from infra.local_seeding import seed_values_for
from workflows.deploy import N8nAccess, deploy_workflows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Each re-seed logs in once (it mints a short-lived API key and deletes it): n8n allows 5 logins per minute per
    # e-mail, so more than 5 runs include n8n's limiter wait (Retry-After) in the timings.
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    configure_testcontainers()
    prefix = f"kzt-bench-wf-{secrets.token_hex(3)}"
    try:
        _, ep = local_engine.start("ci", prefix=prefix, offline=True, free_ports=True, record=False)
        assert ep.n8n_url
        assert ep.database_url
        assert ep.ca_file
        values = seed_values_for(ep, "kaizenity", {})
        times = []
        for _ in range(args.runs):
            access = N8nAccess(ep.n8n_url, ep.secrets["n8nOwnerPassword"])
            started = time.perf_counter()
            report = deploy_workflows(access, values, known_fingerprints=ep.credential_fingerprints)
            times.append(time.perf_counter() - started)
            assert not report.changed
        print(
            f"1. re-seed no-op: median {statistics.median(times) * 1000:.0f} ms over {args.runs} runs (goal < 1000 ms)"
        )
        url = f"{ep.webhook_base_url}telegram/{ep.secrets['telegramWebhookPathToken']}"
        headers = {"X-Telegram-Bot-Api-Secret-Token": ep.secrets["telegramWebhookSecret"]}
        context = ssl.create_default_context(cafile=ep.ca_file)
        with httpx.Client(verify=context, timeout=30, limits=httpx.Limits(max_connections=args.concurrency)) as client:
            client.post(url, json={"update_id": 1, "message": {"chat": {"id": 1}, "text": "warm-up"}}, headers=headers)

            def send(n: int) -> int:
                update = {"update_id": 10_000 + n, "message": {"chat": {"id": n}, "text": f"message {n}"}}
                return client.post(url, json=update, headers=headers).status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                codes = list(pool.map(send, range(args.updates)))
            sent = time.perf_counter() - started
        assert codes.count(200) == args.updates, {c: codes.count(c) for c in set(codes)}
        with psycopg.connect(ep.database_url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM ops.messages WHERE idempotency_key::bigint >= 10000"
                ).fetchone()
                if row and row[0] >= args.updates:
                    break
                time.sleep(0.2)
        stored = time.perf_counter() - started
        print(f"2. webhook throughput through the gateway: {args.updates / sent:.0f} requests/s "
              f"({args.updates} updates, concurrency {args.concurrency}); all {args.updates} rows stored after "
              f"{stored:.1f} s ({args.updates / stored:.0f} rows/s end to end)")  # fmt: skip
    finally:
        local_engine.stop(prefix)


if __name__ == "__main__":
    main()
