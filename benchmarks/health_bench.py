"""Benchmark of `kaizenity health`: parallelism, the cost of a hung dependency, and --help start-up.

    .venv/bin/python benchmarks/health_bench.py [--runs 5] [--stack PREFIX]

1. All probes healthy: the suite's wall time against the slowest probe run alone (goal: within 100 ms).
2. One probe hanging: the suite's wall time against that probe's timeout (goal: within 10 %).
3. `kaizenity health --help` start-up time in a fresh interpreter (goal: < 0.3 s).

The Coda, Telegram, Slack and WhatsApp probes run against the local API fakes of the test suite with a
realistic per-request delay; ``--stack PREFIX`` adds the database, n8n and gateway probes of a running local
environment (`kaizenity up`).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from healthchecks.config import build_plan, merge
from healthchecks.plan import Plan
from healthchecks.runner import run
from healthchecks.targets import settings_from_stack
from tests.fakes.coda import CodaFake
from tests.fakes.server import FakeApi, Fault
from tests.fakes.slack import SlackFake
from tests.fakes.telegram import TelegramFake
from tests.fakes.whatsapp import WhatsAppFake

TOKENS = {"coda": "bench-coda-token", "telegram": "123:bench-telegram-token", "slack": "xoxb-bench", "wa": "bench-wa"}
DELAYS = {"coda": 0.15, "telegram": 0.2, "slack": 0.1, "whatsapp": 0.25}  # seconds per request
HUNG_TIMEOUT = 2.0


@contextlib.contextmanager
def fakes() -> Iterator[dict[str, FakeApi]]:
    """The four API fakes, started, with their per-request delays."""
    servers: dict[str, FakeApi] = {
        "coda": CodaFake(TOKENS["coda"]),
        "telegram": TelegramFake(TOKENS["telegram"]),
        "slack": SlackFake(TOKENS["slack"]),
        "whatsapp": WhatsAppFake(TOKENS["wa"]),
    }
    with contextlib.ExitStack() as stack:
        for name, server in servers.items():
            server.delay = DELAYS[name]
            stack.enter_context(server)
        yield servers


def settings(servers: dict[str, FakeApi], stack: str | None) -> dict[str, object]:
    """Plan settings aimed at the fakes (and the local environment ``stack``, if given)."""
    coda, telegram, whatsapp = servers["coda"], servers["telegram"], servers["whatsapp"]
    assert isinstance(coda, CodaFake)
    assert isinstance(whatsapp, WhatsAppFake)
    data: dict[str, object] = {
        "coda": {"token": TOKENS["coda"], "doc_id": coda.doc_id, "base_url": coda.base_url},
        "telegram": {"token": TOKENS["telegram"], "base_url": telegram.base_url},
        "slack": {"token": TOKENS["slack"], "base_url": servers["slack"].base_url},
        "whatsapp": {"token": TOKENS["wa"], "phone_number_id": whatsapp.phone_number_id, "base_url": whatsapp.base_url},
    }
    return merge(settings_from_stack(stack), data) if stack else data


def slowest_alone(plan: Plan) -> tuple[str, float]:
    """Each probe run alone; the name and wall time of the slowest."""
    times = {}
    for item in plan.planned:
        started = time.monotonic()
        run(plan.select(only=[item.name]))
        times[item.name] = time.monotonic() - started
    name = max(times, key=lambda key: times[key])
    return name, times[name]


def suite_seconds(plan: Plan) -> float:
    started = time.monotonic()
    run(plan)
    return time.monotonic() - started


def help_seconds() -> float:
    started = time.monotonic()
    command = [str(Path(sys.executable).parent / "kaizenity"), "health", "--help"]
    subprocess.run(command, capture_output=True, check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stack", help="prefix of a running local environment to include")
    args = parser.parse_args()
    with fakes() as servers:
        plan = build_plan(settings(servers, args.stack))
        names = ", ".join(item.name for item in plan.planned)
        print(f"probes: {names}")
        overheads = []
        for run_number in range(args.runs):
            name, alone = slowest_alone(plan)
            suite = suite_seconds(plan)
            overheads.append(suite - alone)
            print(f"healthy run {run_number + 1}: suite {suite:.3f} s, slowest alone ({name}) {alone:.3f} s, "
                  f"overhead {1000 * (suite - alone):+.0f} ms")  # fmt: skip
        print(f"healthy: median overhead {1000 * statistics.median(overheads):+.0f} ms (goal: within 100 ms)")
        servers["telegram"].fault = Fault.HANG
        hung_plan = build_plan(settings(servers, args.stack)).with_timeout(HUNG_TIMEOUT)
        ratios = []
        for run_number in range(args.runs):
            wall = suite_seconds(hung_plan)
            ratios.append(wall / HUNG_TIMEOUT)
            print(f"hung run {run_number + 1}: suite {wall:.3f} s with telegram hanging, timeout {HUNG_TIMEOUT:g} s")
        print(f"hung: median suite/timeout {100 * statistics.median(ratios):.1f} % (goal: within 110 %)")
    starts = sorted(help_seconds() for _ in range(max(5, args.runs)))
    print(f"`kaizenity health --help`: median {1000 * statistics.median(starts):.0f} ms, "
          f"max {1000 * starts[-1]:.0f} ms (goal: < 300 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
