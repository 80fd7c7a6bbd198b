"""n8n: the process is up and ready, the seed workflows exist and are active, the heartbeat workflow ran
recently, and few executions failed lately.

``/healthz`` answers 200 even while n8n migrates or its database is down, so readiness is checked too; and
readiness is not "webhooks registered", which is why the heartbeat (written by a scheduled workflow) is the
real end-to-end signal that workflows execute.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from healthchecks.context import ProbeContext
from healthchecks.heartbeat import HeartbeatSource
from healthchecks.httpclient import Service, fetch, generic_problem, json_object, make_client
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

SERVICE = Service("n8n", "KAIZENITY_N8N_API_KEY", "KAIZENITY_N8N_URL")
MAX_PAGES = 20
_ACTIVE_COUNT = re.compile(r"^n8n_active_workflow_count(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class N8nTarget:
    """The n8n instance (its own port, or through the gateway) and what a healthy instance looks like."""

    url: str
    api_key: str | None = None
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
    headers = {"X-N8N-API-KEY": target.api_key} if target.api_key else {}
    with make_client(headers) as client:
        steps: list[Callable[[], None]] = [
            lambda: _check_liveness(client, target, ctx, builder),
            lambda: _check_readiness(client, target, ctx, builder),
            lambda: _check_metrics(client, target, ctx, builder),
        ]
        if target.api_key:
            steps += [
                lambda: _check_workflows(client, target, ctx, builder),
                lambda: _check_failed_executions(client, target, ctx, builder),
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
        return  # N8N_METRICS is off: the public API below is the authoritative check
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


def _api_get(
    client: httpx.Client, target: N8nTarget, ctx: ProbeContext, path: str, *, params: dict[str, Any]
) -> dict[str, Any]:
    check = path
    reply = fetch(client, "GET", f"{target.url}/api/v1/{path}", ctx, SERVICE, params=params)
    problem = generic_problem(reply, SERVICE, check)
    if problem is not None:
        if reply.status_code == 401:
            problem.text = "n8n rejected the API key (HTTP 401)"
            problem.remediation = (
                "Create an API key in n8n (Settings > n8n API) and set KAIZENITY_N8N_API_KEY; keys are per user "
                "and vanish when the user or database is reset."
            )
        raise problem
    return json_object(reply, SERVICE, check)


def _paged(
    client: httpx.Client,
    target: N8nTarget,
    ctx: ProbeContext,
    path: str,
    *,
    params: dict[str, Any],
    done: Callable[[list[dict[str, Any]]], bool] = lambda items: False,
) -> list[dict[str, Any]]:
    """Every item of a cursor-paged list, until the last page or until ``done(items)`` says enough."""
    items: list[dict[str, Any]] = []
    page = dict(params)
    for _ in range(MAX_PAGES):
        body = _api_get(client, target, ctx, path, params=page)
        items += [item for item in body.get("data") or [] if isinstance(item, dict)]
        if not body.get("nextCursor") or done(items):
            break
        page = {**params, "cursor": body["nextCursor"]}
    return items


def _check_workflows(client: httpx.Client, target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    workflows = _paged(client, target, ctx, "workflows", params={"limit": 250})
    active = {str(item.get("name")) for item in workflows if item.get("active") is True}
    known = {str(item.get("name")) for item in workflows}
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
            "Activate them: POST /api/v1/workflows/{id}/activate (live, idempotent) or the editor toggle; if "
            "activation fails, its error names the missing credential.",
        )
    if not missing and not inactive:
        builder.add("workflows", Status.OK, f"{len(target.seed_workflows)} seed workflows active")


def _check_failed_executions(
    client: httpx.Client, target: N8nTarget, ctx: ProbeContext, builder: ResultBuilder
) -> None:
    since = ctx.now() - timedelta(minutes=target.failed_window_minutes)

    def older_than_window(items: list[dict[str, Any]]) -> bool:
        return (_started(items[-1]) or since) < since if items else False  # newest first

    params = {"status": "error", "limit": 100}
    items = _paged(client, target, ctx, "executions", params=params, done=older_than_window)
    failed = [item for item in items if (_started(item) or since) >= since]
    count, window = len(failed), f"{target.failed_window_minutes:g} min"
    builder.measure(
        Measurement("failed_executions", count, Unit.COUNT, target.failed_warning, target.failed_critical, 0)
    )
    status = Status.OK
    if count >= target.failed_critical:
        status = Status.CRITICAL
    elif count >= target.failed_warning:
        status = Status.WARNING
    workflows = sorted({str(item.get("workflowId")) for item in failed})
    text = f"{count} failed executions in the last {window}" + (
        f" (workflows {', '.join(workflows[:5])})" if workflows else ""
    )
    fix = "Open Executions in the editor filtered by Error, read the failing node's message (expired credential?)."
    builder.add("executions", status, text, fix)


def _started(item: dict[str, Any]) -> datetime | None:
    value = item.get("startedAt")
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


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
