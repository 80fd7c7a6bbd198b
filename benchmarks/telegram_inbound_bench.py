"""Inbound Telegram throughput: acknowledge-then-store (the old `onReceived`) vs store-then-acknowledge (now).

    .venv/bin/python benchmarks/telegram_inbound_bench.py [--updates 300] [--concurrency 8] [--rounds 2]

One stack (ci, local engine), one run: both variants of messenger-inbound are deployed in turn (alternating, so
drift on a shared machine hits both) and fed the same number of Telegram-shaped updates through the gateway.
Per variant: acknowledged requests/s, and rows/s until the last row is stored (what actually matters: an
acknowledgement before storing is a promise the old variant could not keep). Prints the ratio new/old.
"""

from __future__ import annotations

import argparse
import copy
import json
import secrets
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra import local_engine
from infra.container_runner import configure_testcontainers
from infra.local_endpoints import LocalEndpoints
from infra.local_seeding import seed_values_for
from infra.services.gateway import STORED_HEADER
from workflows.definitions import DEFINITIONS_DIR
from workflows.deploy import N8nAccess, deploy_workflows

INBOUND = "messenger-inbound.json"
GATE = "Stored?"  # passes only the store function's own answer on to the acknowledgement


def acknowledge_first(definition: dict[str, Any]) -> dict[str, Any]:
    """The same workflow answering on receipt (the old behaviour): no Respond node, Webhook `onReceived`."""
    old = copy.deepcopy(definition)
    respond = next(n for n in old["nodes"] if n["type"] == "n8n-nodes-base.respondToWebhook")
    old["nodes"] = [n for n in old["nodes"] if n is not respond and n["name"] != GATE]
    old["connections"].pop(GATE)  # the gate in front of the acknowledgement goes with it
    webhook = next(n for n in old["nodes"] if n["type"] == "n8n-nodes-base.webhook")
    webhook["parameters"]["responseMode"] = "onReceived"
    # The gateway acknowledges Telegram only with the proof of storage (infra/services/gateway.py STORED_HEADER):
    # the old behaviour sent it on receipt, before storing, which is exactly what this variant measures.
    proof = {"entries": [{"name": STORED_HEADER, "value": "1"}]}
    webhook["parameters"].setdefault("options", {})["responseHeaders"] = proof
    old["connections"]["Store update once"] = old["connections"].pop(respond["name"])
    return old


def deploy(ep: LocalEndpoints, directory: Path) -> None:
    assert ep.n8n_url
    values = seed_values_for(ep, "kaizenity", {})
    access = N8nAccess(ep.n8n_url, ep.secrets["n8nOwnerPassword"])
    report = deploy_workflows(access, values, known_fingerprints=ep.credential_fingerprints, definitions_dir=directory)
    ep.credential_fingerprints = report.credential_fingerprints
    time.sleep(2)  # the webhook of an updated active workflow is re-registered


def run(ep: LocalEndpoints, first_id: int, updates: int, concurrency: int) -> tuple[float, float, dict[int, int]]:
    """(acknowledged requests/s, stored rows/s end to end, HTTP status counts) for `updates` updates.

    Rows/s counts until every update answered 200 is stored (at most 60 s more: a lost one shows as a drop)."""
    assert ep.ca_file
    assert ep.database_url
    url = f"{ep.webhook_base_url}telegram/{ep.secrets['telegramWebhookPathToken']}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": ep.secrets["telegramWebhookSecret"]}
    context = ssl.create_default_context(cafile=ep.ca_file)
    with httpx.Client(verify=context, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:

        def send(n: int) -> int:
            update = {"update_id": first_id + n, "message": {"chat": {"id": n}, "text": f"message {n}"}}
            return client.post(url, json=update, headers=headers).status_code

        while send(-1) != 200:  # warm-up: the re-deployed webhook is registered
            time.sleep(0.5)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            codes = list(pool.map(send, range(updates)))
        acknowledged = time.perf_counter() - started
    ok = [str(first_id + n) for n, code in enumerate(codes) if code == 200]
    with psycopg.connect(ep.database_url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM ops.messages WHERE channel = 'telegram' AND idempotency_key = ANY(%s)", (ok,)
            ).fetchone()
            if row and row[0] >= len(ok):
                break
            time.sleep(0.1)
    statuses = {code: codes.count(code) for code in sorted(set(codes))}
    return len(ok) / acknowledged, len(ok) / (time.perf_counter() - started), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    configure_testcontainers()
    prefix = f"kzt-bench-tg-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory() as tmp:
        old_dir, new_dir = Path(tmp, "old"), Path(tmp, "new")
        shutil.copytree(DEFINITIONS_DIR, old_dir)
        shutil.copytree(DEFINITIONS_DIR, new_dir)
        current = json.loads((DEFINITIONS_DIR / INBOUND).read_text())
        (old_dir / INBOUND).write_text(json.dumps(acknowledge_first(current)))
        try:
            _, ep = local_engine.start("ci", prefix=prefix, offline=True, free_ports=True, record=False)
            results: dict[str, list[tuple[float, float, dict[int, int]]]] = {"old": [], "new": []}
            first_id = 100_000
            for _ in range(args.rounds):
                for variant, directory in (("old", old_dir), ("new", new_dir)):
                    deploy(ep, directory)
                    results[variant].append(run(ep, first_id, args.updates, args.concurrency))
                    print(f"  {variant}: {results[variant][-1]}", flush=True)
                    first_id += args.updates + 10
            medians = {
                v: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
                for v, runs in results.items()
            }
            for variant, (ack, rows) in medians.items():
                label = "acknowledge then store" if variant == "old" else "store then acknowledge"
                print(f"{label:24s}: {ack:6.1f} acknowledged/s, {rows:6.1f} stored rows/s end to end")
            print(
                f"ratio new/old: {medians['new'][0] / medians['old'][0]:.2f} (acknowledged/s), "
                f"{medians['new'][1] / medians['old'][1]:.2f} (stored rows/s); {args.updates} updates x "
                f"{args.rounds} rounds, concurrency {args.concurrency}"
            )
        finally:
            local_engine.stop(prefix)


if __name__ == "__main__":
    main()
