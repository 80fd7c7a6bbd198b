"""Run the planned probes in parallel, each bounded by its own timeout.

One daemon thread per probe: a hung dependency costs one timeout, not a place in a queue, and a probe that
overruns its budget (a library ignoring our timeout) is abandoned and reported instead of holding the run
or the process exit (daemon threads do not block interpreter shutdown, unlike ThreadPoolExecutor's).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from healthchecks.context import ProbeContext, utc_now
from healthchecks.plan import Plan, Planned
from healthchecks.report import Report
from healthchecks.result import ProbeResult, Status

GRACE_SECONDS = 0.25  # past a probe's own timeout before the runner gives up on it


def run(plan: Plan, now: Callable[[], datetime] = utc_now) -> Report:
    """Run every planned probe concurrently and collect a report within max(timeout) + grace."""
    started_at, started = now(), time.monotonic()
    slots: dict[str, ProbeResult] = {}
    threads = [_start(item, plan, now, slots) for item in plan.planned]
    results = []
    for item, thread in zip(plan.planned, threads, strict=True):
        thread.join(max(0.0, started + item.timeout + GRACE_SECONDS - time.monotonic()))
        results.append(slots.get(item.name) or _abandoned(item))
    return Report(tuple(results), plan.not_configured, started_at, time.monotonic() - started)


def _start(
    item: Planned[Any], plan: Plan, now: Callable[[], datetime], slots: dict[str, ProbeResult]
) -> threading.Thread:
    def work() -> None:
        ctx = ProbeContext(timeout=item.timeout, retries=item.retries, redactor=plan.redactor, now=now)
        slots[item.name] = run_one(item, ctx)

    thread = threading.Thread(target=work, name=f"probe-{item.name}", daemon=True)
    thread.start()
    return thread


def run_one(item: Planned[Any], ctx: ProbeContext) -> ProbeResult:
    """Run one probe, timing it; a crash becomes an UNKNOWN result with the redacted exception."""
    try:
        result = item.probe(item.target, ctx)
    except Exception as exc:  # a probe bug must not take the whole report down
        result = ProbeResult(
            item.name,
            Status.UNKNOWN,
            f"probe crashed: {ctx.redactor.exception(exc)}",
            "This is a bug in the health check, not necessarily in the service: check the service by hand "
            "and report the error with `kaizenity health --format json` output.",
        )
    return dataclasses.replace(result, probe=item.name, duration_seconds=ctx.elapsed())


def _abandoned(item: Planned[Any]) -> ProbeResult:
    return ProbeResult(
        item.name,
        Status.CRITICAL,
        f"no answer within the {item.timeout:g} s timeout (probe abandoned)",
        f"The {item.name} dependency hangs instead of failing: check it is up and not overloaded; if it is "
        "just slow, raise its timeout.",
        duration_seconds=item.timeout + GRACE_SECONDS,
    )
