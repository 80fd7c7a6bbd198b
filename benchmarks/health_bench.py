"""Benchmark of `kaizenity health`'s parallelism and start-up.

    .venv/bin/python benchmarks/health_bench.py [--runs 5]

1. All probes healthy (Coda, Telegram, Slack, WhatsApp against local contract fakes): suite wall time vs the
   slowest single probe run alone (goal: within 100 ms).
2. One probe hanging (Slack, timeout 2 s): suite wall time vs that timeout (goal: within 10 %).
3. `kaizenity health --help` start time, a fresh process each run (goal: < 0.3 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from healthchecks.config import build_plan
from healthchecks.runner import run
from tests.fakes.coda import CodaFake
from tests.fakes.server import Fault
from tests.fakes.slack import SlackFake
from tests.fakes.telegram import TelegramFake
from tests.fakes.whatsapp import WhatsAppFake

TOKENS = {"coda": "coda-token", "telegram": "123:tg-token", "slack": "xoxb-token", "whatsapp": "EAAG-token"}


def settings(fakes: dict[str, Any], timeout: float) -> dict[str, Any]:
    return {
        "coda": {"token": TOKENS["coda"], "doc_id": "AbCDeFGH", "base_url": fakes["coda"].base_url, "timeout": timeout},
        "telegram": {"token": TOKENS["telegram"], "base_url": fakes["telegram"].base_url, "timeout": timeout,
                     "webhook_url": "https://ops.example.com/webhook/telegram"},
        "slack": {"token": TOKENS["slack"], "base_url": fakes["slack"].base_url, "timeout": timeout},
        "whatsapp": {"token": TOKENS["whatsapp"], "phone_number_id": "106540352242922",
                     "base_url": fakes["whatsapp"].base_url, "timeout": timeout},
    }  # fmt: skip


def wall(data: dict[str, Any], only: list[str]) -> float:
    plan = build_plan(data).select(only, [])
    started = time.perf_counter()
    run(plan)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs: int = parser.parse_args().runs
    fakes = {"coda": CodaFake(TOKENS["coda"]), "telegram": TelegramFake(TOKENS["telegram"]),
             "slack": SlackFake(TOKENS["slack"]), "whatsapp": WhatsAppFake(TOKENS["whatsapp"])}  # fmt: skip
    for fake in fakes.values():
        fake.__enter__()
    try:
        data = settings(fakes, timeout=5)
        names = list(fakes)
        singles = {n: statistics.median(wall(data, [n]) for _ in range(runs)) for n in names}
        suite = statistics.median(wall(data, names) for _ in range(runs))
        slowest = max(singles.values())
        print("1. all healthy: " + ", ".join(f"{n} {t * 1000:.0f} ms" for n, t in singles.items()))
        print(f"   suite {suite * 1000:.0f} ms vs slowest single {slowest * 1000:.0f} ms: "
              f"+{(suite - slowest) * 1000:.0f} ms (goal < 100 ms)")  # fmt: skip
        fakes["slack"].fault = Fault.HANG
        hung = settings(fakes, timeout=2)
        suite_hung = statistics.median(wall(hung, names) for _ in range(max(2, runs // 2)))
        print(f"2. slack hanging (timeout 2 s): suite {suite_hung:.2f} s = {suite_hung / 2 * 100:.0f} % of the timeout "
              "(goal within 10 %)")  # fmt: skip
    finally:
        for fake in fakes.values():
            fake.__exit__(None, None, None)
    exe = Path(sys.executable).parent / "kaizenity"
    starts = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(exe), "health", "--help"], check=True, capture_output=True)
        starts.append(time.perf_counter() - started)
    print(f"3. `kaizenity health --help`: median {statistics.median(starts) * 1000:.0f} ms (goal < 300 ms)")


if __name__ == "__main__":
    main()
