"""Benchmark: inbound throughput and end-to-end latency, single mode vs queue mode with 1, 2 and 4 workers.

    .venv/bin/python benchmarks/queue_bench.py [--updates 200] [--parallel 8] [--workers 1,2,4]

One run, one machine: the `ci` stack (single mode) and the `ci-queue` stack (queue mode) are brought up with the
local engine; the queue stack is re-scaled between rounds with the rolling replacement (infra/scaling.py), so the
main process, Redis and PostgreSQL stay the same. Each round posts N Telegram updates through the gateway (the
seed workflow `messenger-inbound`: the INSERT through ops.store_telegram_update, the `Stored?` gate, then the
answer with the proof of storage), `parallel` at a time.

- inbound throughput: acknowledged updates / seconds until the last HTTP 200 (what Telegram sees);
- end-to-end latency: `ops.messages.received_at` (now() in the worker's INSERT) minus the moment the client sent
  the update (same host clock), p50 / p95 / max, and the drain time until the last row is stored;
- CPU: `docker stats` sampled during the round, mean % per container (100 % = one core), to name the bottleneck.
"""

from __future__ import annotations

import argparse
import secrets
import ssl
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import count

import httpx
import psycopg

from infra import local_engine
from infra.local_endpoints import LocalEndpoints
from infra.scaling import scale_local

_ids = count(int(time.time()) * 1000)


@dataclass
class Round:
    """One measured round."""

    label: str
    sent: int
    acknowledged: int
    inbound_s: float
    drain_s: float
    latencies: list[float]
    cpu: dict[str, float] = field(default_factory=dict)

    def row(self) -> str:
        lat = sorted(self.latencies) or [float("nan")]
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        top = ", ".join(f"{name} {pct:.0f}%" for name, pct in sorted(self.cpu.items(), key=lambda x: -x[1])[:4])
        return (
            f"| {self.label} | {self.acknowledged}/{self.sent} | {self.acknowledged / self.inbound_s:.1f} | "
            f"{statistics.median(lat):.2f} | {p95:.2f} | {max(lat):.2f} | {self.drain_s:.1f} | {top} |"
        )


class CpuSampler(threading.Thread):
    """`docker stats --no-stream` for the environment's containers, every few seconds, until stopped."""

    def __init__(self, prefix: str) -> None:
        super().__init__(daemon=True)
        self.prefix = prefix
        self.samples: dict[str, list[float]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            out = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            for line in out.splitlines():
                name, _, pct = line.partition(" ")
                if name.startswith(self.prefix + "-"):
                    short = name[len(self.prefix) + 1 :]
                    self.samples.setdefault(short, []).append(float(pct.rstrip("%") or 0))

    def means(self) -> dict[str, float]:
        self.done.set()
        self.join(30)
        return {name: statistics.mean(values) for name, values in self.samples.items() if values}


def measure(stack: LocalEndpoints, label: str, updates: int, parallel: int) -> Round:
    """Post `updates` Telegram updates through the gateway and wait until every acknowledged one is stored."""
    assert stack.ca_file
    assert stack.database_url
    url = f"{stack.webhook_base_url}telegram/{stack.secrets['telegramWebhookPathToken']}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": stack.secrets["telegramWebhookSecret"]}
    sent_at: dict[int, float] = {}
    client = httpx.Client(verify=ssl.create_default_context(cafile=stack.ca_file), timeout=30)

    def post(update_id: int) -> bool:
        body = {"update_id": update_id, "message": {"message_id": 1, "date": 0, "chat": {"id": 1}, "text": "b"}}
        sent_at[update_id] = time.time()
        try:
            return client.post(url, json=body, headers=headers).status_code == 200
        except httpx.HTTPError:
            return False

    ids = [next(_ids) for _ in range(updates)]
    sampler = CpuSampler(stack.prefix)
    sampler.start()
    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        acked = [i for i, ok in zip(ids, pool.map(post, ids), strict=True) if ok]
    inbound_s = time.monotonic() - started
    rows = _wait_stored(stack.database_url, acked, 180)
    drain_s = time.monotonic() - started
    client.close()
    latencies = [rows[i] - sent_at[i] for i in acked if i in rows]
    return Round(label, updates, len(acked), inbound_s, drain_s, latencies, sampler.means())


def _wait_stored(database_url: str, ids: list[int], timeout_s: float) -> dict[int, float]:
    sql = (
        "SELECT idempotency_key, extract(epoch FROM received_at) FROM ops.messages "
        "WHERE channel = 'telegram' AND idempotency_key = ANY(%s)"
    )
    deadline = time.monotonic() + timeout_s
    keys = [str(i) for i in ids]
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            rows = {int(k): float(t) for k, t in conn.execute(sql, (keys,)).fetchall()}
            if len(rows) == len(ids) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=5)
    args = parser.parse_args()
    rounds: list[Round] = []
    for stack_name in ("ci", "ci-queue"):
        prefix = f"kzt-qbench-{secrets.token_hex(3)}"
        seed = {"heartbeatUnit": "minutes", "heartbeatEvery": "5"}
        try:
            _, stack = local_engine.start(
                stack_name, prefix=prefix, offline=True, free_ports=True, record=False, seed_values=seed
            )
            measure(stack, "warm-up", 20, args.parallel)
            if stack_name == "ci":
                rounds.append(_report(measure(stack, "single mode", args.updates, args.parallel)))
                continue
            for workers in (int(w) for w in args.workers.split(",")):
                scale_local(stack_name, prefix, stack.stack_secrets(), workers=workers, concurrency=args.concurrency)
                label = f"queue, {workers} worker(s) x{args.concurrency}"
                rounds.append(_report(measure(stack, label, args.updates, args.parallel)))
        finally:
            local_engine.stop(prefix)
    print(f"\nload: {args.updates} updates, {args.parallel} in parallel; `uptime`: {_uptime()}")
    print("| mode | acked/sent | inbound req/s | e2e p50 s | e2e p95 s | e2e max s | drain s | mean CPU (top 4) |")
    print("|---|---|---|---|---|---|---|---|")
    for measured in rounds:
        print(measured.row())


def _report(measured: Round) -> Round:
    """Print each round as it ends (with the load then): a later failure keeps the rounds already measured."""
    print(f"{measured.row()}  [{_uptime()}]", flush=True)
    return measured


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    main()
