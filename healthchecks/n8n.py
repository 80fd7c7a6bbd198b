"""n8n: the process is up and ready, the seed workflows exist and are active, the heartbeat workflow ran
recently, and few executions failed lately.

Workflows and executions are read from n8n's database by a read-only login (healthchecks/n8n_state.py), not
through n8n's public API: health needs no n8n API key.

``/healthz`` answers 200 even while n8n migrates or its database is down, so readiness is checked too; and
readiness is not "webhooks registered", which is why the heartbeat (written by a scheduled workflow) is the
real end-to-end signal that workflows execute.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import httpx

from healthchecks.context import ProbeContext
from healthchecks.heartbeat import HeartbeatSource
from healthchecks.httpclient import Service, fetch, make_client
from healthchecks.n8n_state import N8nStateSource
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

SERVICE = Service("n8n", "KAIZENITY_N8N_URL", "KAIZENITY_N8N_URL")
_T = TypeVar("_T")
_ACTIVE_COUNT = re.compile(r"^n8n_active_workflow_count(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class N8nTarget:
    """The n8n instance (its own port, or through the gateway) and what a healthy instance looks like."""

    url: str
    state: N8nStateSource | None = None  # n8n's workflows and executions (healthchecks/n8n_state.py)
    seed_workflows: tuple[str, ...] = ()
    heartbeat: HeartbeatSource | None = None
    heartbeat_warning_minutes: float = 15.0
    heartbeat_critical_minutes: float = 60.0
    failed_window_minutes: float = 60.0
    failed_warning: int = 1
    failed_critical: int = 10


def probe(target: N8nTarget, ctx: ProbeContext) -> ProbeResult:
    """Liveness first (nothing else can answer without it), then each independent check on its own."""
    builder = ResultBuilder("n8n")
    with make_client({}) as client:
        steps: list[Callable[[], None]] = [
            lambda: _check_liveness(client, target, ctx, builder),
            lambda: _check_readiness(client, target, ctx, builder),
            lambda: _check_metrics(client, target, ctx, builder),
        ]
        if target.state is not None:
            state = target.state
            steps += [
                lambda: _check_workflows(state, target, ctx, builder),
                lambda: _check_failed_executions(state, target, ctx, builder),
            ]
        if target.heartbeat is not None:
            steps.append(lambda: _check_heartbeat(target, ctx, builder))
        _run_steps(steps, builder)
    return builder.build()


def _run_steps(steps: list[Callable[[], None]], builder: ResultBuilder) -> None:
    for step in steps:
        try:
            step()
        except Problem as problem:
            problem.record(builder)
            if problem.check == "process":
                return


def _check_liveness(client: httpx.Client, target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    try:
        reply = fetch(client, "GET", f"{target.url}/healthz", ctx, SERVICE)
    except Problem as problem:
        problem.check = "process"
        problem.remediation = (
            "n8n is not answering: `docker ps` / `docker logs` the n8n container (crash loop? out of "
            "memory? database unreachable at start makes it exit), then restart it. " + problem.remediation
        )
        raise
    builder.measure(Measurement("latency", round(reply.latency, 4), Unit.SECONDS, minimum=0))
    if reply.status_code != 200:
        raise Problem(
            "process",
            Status.CRITICAL,
            f"n8n /healthz answered HTTP {reply.status_code}",
            "Something other than n8n answers on KAIZENITY_N8N_URL, or n8n is broken: check the container logs.",
        )
    builder.add("process", Status.OK, "process up")


def _check_readiness(client: httpx.Client, target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    reply = fetch(client, "GET", f"{target.url}/healthz/readiness", ctx, SERVICE)
    if reply.status_code == 200:
        builder.add("ready", Status.OK, "ready")
        return
    builder.add(
        "ready",
        Status.CRITICAL,
        f"n8n not ready (HTTP {reply.status_code}): its database is unreachable or it is still migrating",
        "Run `kaizenity health --only database`; if the database is fine, n8n may be migrating after an "
        "upgrade (watch its logs) - readiness returns about 6 s after the database does.",
    )


def _check_metrics(client: httpx.Client, target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    reply = fetch(client, "GET", f"{target.url}/metrics", ctx, SERVICE)
    match = _ACTIVE_COUNT.search(reply.text) if reply.status_code == 200 else None
    if match is None:
        return  # N8N_METRICS is off: the database read below is the authoritative check
    active = float(match.group(1))
    builder.measure(Measurement("active_workflows", active, Unit.COUNT, minimum=0))
    if active == 0 and target.seed_workflows:
        builder.add(
            "active",
            Status.CRITICAL,
            "n8n reports 0 active workflows",
            "Nothing will run: activate the seed workflows (`kaizenity` bootstrap, or the editor) and check "
            "the n8n logs for activation errors (missing credentials).",
        )


READER_FIX = (
    "The health check reads n8n's workflows and executions as the read-only login kaizenity_n8n_reader, which "
    "the seeder creates and grants once n8n has created its tables: run `kaizenity workflows seed` (or "
    "`pulumi up`), and check KAIZENITY_N8N_READER_DATABASE_URL / n8n.database_url points at n8n's database."
)


def _read(check: str, what: str, ctx: ProbeContext, read: Callable[[float], _T]) -> _T:
    """One read of n8n's state; a database error becomes this check's finding, naming the cause and the fix."""
    import psycopg

    try:
        return read(ctx.remaining())
    except psycopg.errors.InsufficientPrivilege as exc:
        raise Problem(
            check,
            Status.CRITICAL,
            f"{what} not readable: the reader login lacks a privilege ({ctx.redactor.exception(exc)})",
            READER_FIX,
        ) from None
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise Problem(
            check,
            Status.CRITICAL,
            f"{what} not readable: n8n's tables are not there or changed ({ctx.redactor.exception(exc)})",
            "n8n creates its tables on its first start: wait for readiness; after an n8n upgrade, check "
            "healthchecks/n8n_state.py against the new schema. " + READER_FIX,
        ) from None
    except psycopg.OperationalError as exc:
        raise Problem(
            check,
            Status.CRITICAL if "authentication" in str(exc) else Status.UNKNOWN,
            f"{what} not read: {ctx.redactor.exception(exc)}",
            READER_FIX if "authentication" in str(exc) else "Check `kaizenity health --only database`. " + READER_FIX,
        ) from None
    except psycopg.Error as exc:
        raise Problem(check, Status.UNKNOWN, f"{what} not read: {ctx.redactor.exception(exc)}", READER_FIX) from None


def _check_workflows(state: N8nStateSource, target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    workflows = _read("workflows", "n8n's workflows", ctx, state.workflows)
    active = {item.name for item in workflows if item.active}
    known = {item.name for item in workflows}
    missing = [name for name in target.seed_workflows if name not in known]
    inactive = [name for name in target.seed_workflows if name in known and name not in active]
    builder.measure(Measurement("workflows", len(workflows), Unit.COUNT, minimum=0))
    if missing:
        builder.add(
            "workflows",
            Status.CRITICAL,
            f"seed workflows missing: {', '.join(missing)}",
            "Run `kaizenity workflows seed` (or `pulumi up`); do not use `n8n import:workflow` on a running "
            "instance, it deactivates workflows and breaks live webhooks until restart.",
        )
    if inactive:
        builder.add(
            "workflows",
            Status.CRITICAL,
            f"seed workflows inactive: {', '.join(inactive)}",
            "Activate them: `kaizenity workflows seed` (activates what git declares active) or the editor toggle; "
            "if activation fails, its error names the missing credential.",
        )
    if not missing and not inactive:
        builder.add("workflows", Status.OK, f"{len(target.seed_workflows)} seed workflows active")


def _check_failed_executions(
    state: N8nStateSource, target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    since = ctx.now() - timedelta(minutes=target.failed_window_minutes)
    failed = _read("executions", "n8n's executions", ctx, lambda budget: state.failed_executions(since, budget))
    count, window = len(failed), f"{target.failed_window_minutes:g} min"
    builder.measure(
        Measurement("failed_executions", count, Unit.COUNT, target.failed_warning, target.failed_critical, 0)
    )
    status = Status.OK
    if count >= target.failed_critical:
        status = Status.CRITICAL
    elif count >= target.failed_warning:
        status = Status.WARNING
    workflows = sorted({item.workflow_id for item in failed})
    text = f"{count} failed executions in the last {window}" + (
        f" (workflows {', '.join(workflows[:5])})" if workflows else ""
    )
    fix = "Open Executions in the editor filtered by Error, read the failing node's message (expired credential?)."
    builder.add("executions", status, text, fix)


def _check_heartbeat(target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    assert target.heartbeat is not None
    fix = (
        "The heartbeat workflow has not run: check it is active, its schedule trigger, and its last "
        "executions; a stopped n8n scheduler (or a dead queue worker) also stops it."
    )
    try:
        last = target.heartbeat(ctx.remaining())
    except Exception as exc:  # the source is a database query: any failure means "could not tell"
        builder.add(
            "heartbeat",
            Status.UNKNOWN,
            f"heartbeat not checked: {ctx.redactor.exception(exc)}",
            "Check the database probe and that ops.heartbeats exists (migrations applied).",
        )
        return
    if last is None:
        builder.add("heartbeat", Status.CRITICAL, "no heartbeat ever recorded", fix)
        return
    age = max(0.0, (ctx.now() - last).total_seconds())
    warn, crit = target.heartbeat_warning_minutes * 60, target.heartbeat_critical_minutes * 60
    builder.measure(Measurement("heartbeat_age", round(age, 1), Unit.SECONDS, warn, crit, 0))
    status = Status.CRITICAL if age >= crit else Status.WARNING if age >= warn else Status.OK
    builder.add("heartbeat", status, f"last heartbeat {age / 60:.1f} min ago", fix)
