"""n8n queue mode: live workers, backlog (waiting / active / failed jobs, oldest waiting job), crashed executions.

Read straight from Redis, the same keys Bull itself uses, so the answer is immediate: a dead worker pool shows
up on the next run, not when a heartbeat goes stale 15 minutes later.

- Bull's keys (bull lib/queue.js, n8n's queue "jobs" with prefix QUEUE_BULL_PREFIX "bull"): `bull:jobs:wait`
  (list; LPUSH on add, BRPOPLPUSH by workers, so the right end is the next job), `bull:jobs:active` (list),
  `bull:jobs:failed` / `completed` (zsets), `bull:jobs:meta-paused` (queue paused), a hash `bull:jobs:<id>`
  per job (`timestamp` = enqueue time in ms) and `bull:jobs:<id>:lock` while a worker holds the job.
- Live workers: in bull 4.16.4 (what n8n 2.8.4 ships) only `setWorkerName` names a connection, `bull:<base64
  "jobs">` (lib/worker.js clientName), and only `process()` calls it (lib/queue.js setHandler): the blocking
  connection of a worker. Neither bull's own clients nor n8n's createClient (services/redis-client.service.js)
  set a name, so the main process and webhook processors never carry it. `CLIENT LIST` connections with that
  name are workers, one per worker process (counted by address); a killed worker's connection vanishes at once.
  The connection's last command is not a usable filter: with a backlog the worker fetches the next job in
  moveToFinished, and its blocking connection may show `client|setname` for as long as the backlog lasts.
- n8n 2.8.4 gives jobs no retry attempts and `maxStalledCount: 0` (dist/scaling/scaling.service.js): a job whose
  worker died is never re-run. Its lock (lockDuration 60 s, @n8n/config scaling-mode.config.js) expires, and the
  next stalled check of a live worker (stalledInterval 30 s; bull moveStalledJobsToWait-8.lua) that finds it in
  the `stalled` set without a lock moves it to failed, deletes it (`removeOnFail: true`) and publishes the
  failure: 60 to 90 s after the kill. Meanwhile it is an active job without a lock ("orphaned" below). A live
  worker's job is briefly lockless too: bull's getNextJob moves it wait -> active with BRPOPLPUSH and only then
  takes the lock (moveToActive-8.lua), and a job that finishes between the probe's read of the active list and
  of the locks has neither any more. So a lockless active job counts only if ORPHAN_CONFIRM_S later it is, at
  one instant (MULTI), still in the active list and still lockless: a dead worker's job stays so until the
  stalled check.
- The main process awaits every job (`job.finished()` in dist/workflow-runner.js): on "job stalled more than
  maxStalledCount" it wraps a MaxStalledCountError and `processError` stores the execution with status "error"
  through the worker save hooks (hookFunctionsSaveWorker: no delete, even when the workflow saves no failed
  executions) and its data replaced by that error: the trigger data is gone. The database check counts these
  ("stalled": status error carrying MaxStalledCountError's message).
- Without a live main process (or if it restarted meanwhile) nobody finalizes the execution: it stays "running"
  until n8n's queue recovery (every N8N_EXECUTIONS_QUEUE_RECOVERY_INTERVAL, 180 min by default:
  `recoverFromQueue`) marks it "crashed". The database check finds these orphans now, the same way recovery does
  (in progress in the database, no job in wait/active) but only for executions older than a grace period, so one
  whose job is being enqueued right now is not counted.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import redis

from healthchecks.context import ProbeContext
from healthchecks.problems import Problem
from healthchecks.redis import connect
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

QUEUE_NAME = "jobs"  # n8n's Bull queue (scaling/constants: QUEUE_NAME)
# The start of MaxStalledCountError's message (n8n 2.8.4 dist/errors/max-stalled-count.error.js), stored in the
# execution's data when the main process fails a job whose worker died.
STALLED_MESSAGE = "This execution failed to be processed too many times and will no longer retry"
MAX_SCANNED_JOBS = 2000
ORPHAN_CONFIRM_S = 1.0  # far longer than bull's BRPOPLPUSH -> lock window, far shorter than the 30 s stalled check

NO_WORKER_FIX = (
    "No n8n worker is connected to Redis, so nothing executes and jobs pile up: `docker ps -a --filter "
    "name=n8n-worker` and `docker logs` them (crash loop? out of memory? wrong redisPassword or "
    "N8N_ENCRYPTION_KEY?), then start them (`kaizenity scale --local --stack S --workers N`, or `pulumi up`). "
    "Jobs already waiting run as soon as a worker connects; executions that were running on a killed worker are "
    "not retried (see the runbook: queue mode, crashed executions)."
)


@dataclass(frozen=True)
class QueueTarget:
    """Redis (the URL holds the password), n8n's Bull prefix, the expected pool, thresholds, n8n's database."""

    url: str
    prefix: str = "bull"
    expected_workers: int | None = None
    waiting_warning: int = 50
    waiting_critical: int = 500
    oldest_warning_seconds: float = 60.0
    oldest_critical_seconds: float = 300.0
    n8n_database_url: str | None = None
    crashed_window_minutes: float = 60.0
    crashed_warning: int = 1
    crashed_critical: int = 10
    orphan_grace_seconds: float = 60.0

    def key(self, suffix: str) -> str:
        """A Bull key of n8n's queue: `bull:jobs:<suffix>`."""
        return f"{self.prefix}:{QUEUE_NAME}:{suffix}"

    @property
    def worker_client_name(self) -> str:
        """The connection name Bull gives a queue's clients: `<prefix>:<base64(queue name)>`."""
        return f"{self.prefix}:{base64.b64encode(QUEUE_NAME.encode()).decode()}"


@dataclass(frozen=True)
class QueueState:
    """What Redis says about the queue right now."""

    workers: int
    waiting: int
    active: int
    failed: int
    paused: bool
    oldest_waiting_seconds: float | None
    orphaned_active: int  # active jobs whose lock is gone: their worker died
    queued_execution_ids: frozenset[str] | None = frozenset()  # executions with a job in wait/active; None: not read


def probe(target: QueueTarget, ctx: ProbeContext) -> ProbeResult:
    """Workers and backlog from Redis; crashed executions from n8n's database when configured."""
    builder = ResultBuilder("queue")
    try:
        client = connect(target.url, ctx)
        with client:
            state = read_state(client, target, ctx)
        _report(state, target, builder)
        if target.n8n_database_url:
            _check_executions(target, ctx, builder, state.queued_execution_ids)
    except Problem as problem:
        problem.record(builder)
    except redis.RedisError as exc:
        builder.add("queue", Status.UNKNOWN, f"queue not read: {ctx.redactor.exception(exc)}", "Check Redis.")
    return builder.build()


def live_workers(client: redis.Redis, target: QueueTarget) -> int:
    """Worker processes connected now: Bull's named worker connections (see the module doc), one per address."""
    clients: list[dict[str, Any]] = client.client_list()
    addresses = {
        str(item.get("addr", "")).rsplit(":", 1)[0]
        for item in clients
        if str(item.get("name", "")) == target.worker_client_name
    }
    return len(addresses)


def read_state(
    client: redis.Redis, target: QueueTarget, ctx: ProbeContext, sleep: Callable[[float], None] = time.sleep
) -> QueueState:
    """One consistent-enough snapshot: counts in one pipeline, then the waiting jobs' ages and active locks."""
    pipe = client.pipeline(transaction=False)
    pipe.llen(target.key("wait"))
    pipe.llen(target.key("active"))
    pipe.zcard(target.key("failed"))
    pipe.exists(target.key("meta-paused"))
    pipe.lrange(target.key("wait"), -MAX_SCANNED_JOBS, -1)
    pipe.lrange(target.key("active"), 0, MAX_SCANNED_JOBS - 1)
    waiting, active, failed, paused, waiting_ids, active_ids = pipe.execute()
    oldest = _oldest_age(client, target, waiting_ids, ctx)
    orphaned = _orphaned(client, target, active_ids, ctx, sleep)
    # Orphans are judged only when every queued job was read (else an unread job would look orphaned).
    complete = waiting <= MAX_SCANNED_JOBS and active <= MAX_SCANNED_JOBS
    queued = _execution_ids(client, target, [*waiting_ids, *active_ids]) if complete else None
    workers = live_workers(client, target)
    return QueueState(workers, waiting, active, failed, bool(paused), oldest, orphaned, queued)


def _execution_ids(client: redis.Redis, target: QueueTarget, job_ids: list[str]) -> frozenset[str]:
    """The n8n execution ids the given Bull jobs carry (job data `{"executionId": ...}`)."""
    if not job_ids:
        return frozenset()
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(target.key(job_id), "data")
    ids = set()
    for raw in pipe.execute():
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("executionId") is not None:
            ids.add(str(data["executionId"]))
    return frozenset(ids)


def _oldest_age(client: redis.Redis, target: QueueTarget, ids: list[str], ctx: ProbeContext) -> float | None:
    if not ids:
        return None
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(target.key(job_id), "timestamp")
    stamps = [float(value) for value in pipe.execute() if value]
    if not stamps:
        return None
    now_ms = ctx.now().timestamp() * 1000
    return max(0.0, (now_ms - min(stamps)) / 1000)


def _orphaned(
    client: redis.Redis, target: QueueTarget, ids: list[str], ctx: ProbeContext, sleep: Callable[[float], None]
) -> int:
    """Active jobs without a lock, still so ORPHAN_CONFIRM_S later (see the module doc: not a job being taken
    or finished by a live worker right now)."""
    candidates = [job_id for job_id, held in zip(ids, _locks_held(client, target, ids), strict=True) if not held]
    if not candidates:
        return 0
    sleep(min(ORPHAN_CONFIRM_S, max(0.0, ctx.remaining() / 4)))
    pipe = client.pipeline(transaction=True)  # one MULTI/EXEC: membership and lock read at the same instant
    for job_id in candidates:
        pipe.lpos(target.key("active"), job_id)
        pipe.exists(target.key(f"{job_id}:lock"))
    answers = pipe.execute()
    return sum(
        1 for position, held in zip(answers[::2], answers[1::2], strict=True) if position is not None and not held
    )


def _locks_held(client: redis.Redis, target: QueueTarget, ids: list[str]) -> list[bool]:
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.exists(target.key(f"{job_id}:lock"))
    return [bool(held) for held in pipe.execute()]


def _report(state: QueueState, target: QueueTarget, builder: ResultBuilder) -> None:
    for name, value in (("workers", state.workers), ("jobs_active", state.active), ("jobs_failed", state.failed)):
        builder.measure(Measurement(name, value, Unit.COUNT, minimum=0))
    builder.measure(
        Measurement("jobs_waiting", state.waiting, Unit.COUNT, target.waiting_warning, target.waiting_critical, 0)
    )
    if state.oldest_waiting_seconds is not None:
        builder.measure(
            Measurement(
                "oldest_waiting_age", round(state.oldest_waiting_seconds, 1), Unit.SECONDS,
                target.oldest_warning_seconds, target.oldest_critical_seconds, 0,
            )
        )  # fmt: skip
    _report_workers(state, target, builder)
    _report_backlog(state, target, builder)
    _report_orphans_and_failures(state, builder)


def _report_workers(state: QueueState, target: QueueTarget, builder: ResultBuilder) -> None:
    backlog = f"{state.waiting} job(s) waiting" + (
        f", oldest {state.oldest_waiting_seconds:.0f} s" if state.oldest_waiting_seconds is not None else ""
    )
    if state.workers == 0:
        builder.add("workers", Status.CRITICAL, f"no live worker ({backlog})", NO_WORKER_FIX)
    elif target.expected_workers and state.workers < target.expected_workers:
        builder.add(
            "workers",
            Status.WARNING,
            f"{state.workers} of {target.expected_workers} workers live",
            "A worker is down: `docker ps -a --filter name=n8n-worker`, its logs, then start it; capacity is "
            "reduced meanwhile.",
        )
    else:
        builder.add("workers", Status.OK, f"{state.workers} live worker(s)")
    if state.paused:
        builder.add(
            "paused",
            Status.CRITICAL,
            "the queue is paused (bull:jobs:meta-paused): workers take no jobs",
            "Someone paused the Bull queue: resume it (delete the meta-paused key after renaming bull:jobs:paused "
            "back to bull:jobs:wait, as Bull's pause script does), and find out who paused it.",
        )


def _report_backlog(state: QueueState, target: QueueTarget, builder: ResultBuilder) -> None:
    fix = (
        "Workers cannot keep up (or are stuck): check `kaizenity health --only queue` worker count and their CPU "
        "(`docker stats`); add workers or concurrency (n8n.workers / n8n.workerConcurrency, then "
        "`kaizenity scale`), and look for a slow node in the running executions."
    )
    age = state.oldest_waiting_seconds or 0.0
    status = Status.OK
    if state.waiting >= target.waiting_critical or age >= target.oldest_critical_seconds:
        status = Status.CRITICAL
    elif state.waiting >= target.waiting_warning or age >= target.oldest_warning_seconds:
        status = Status.WARNING
    text = f"{state.waiting} waiting, {state.active} active" + (f", oldest waiting {age:.0f} s" if age else "")
    builder.add("backlog", status, text, fix)


def _report_orphans_and_failures(state: QueueState, builder: ResultBuilder) -> None:
    if state.orphaned_active:
        builder.add(
            "orphaned",
            Status.WARNING,
            f"{state.orphaned_active} active job(s) without a worker lock: their worker died mid-execution",
            "n8n 2.8.4 never re-runs them (maxStalledCount 0): a live worker moves them to failed within 30 s. "
            "Find the executions (status crashed/running in n8n) and replay what matters by hand.",
        )
    if state.failed:
        builder.add(
            "failed_jobs",
            Status.WARNING,
            f"{state.failed} failed Bull job(s) kept in Redis",
            "n8n removes jobs when they end; failed ones left here are usually stalled jobs of a dead worker. "
            "Check their executions in n8n, then clear them (bull:jobs:failed).",
        )


def _check_executions(
    target: QueueTarget, ctx: ProbeContext, builder: ResultBuilder, queued: frozenset[str] | None
) -> None:
    """Crashed executions in the window, and orphans: in progress in n8n's database but with no Bull job left."""
    since = ctx.now() - timedelta(minutes=target.crashed_window_minutes)
    crashed_sql = 'SELECT count(*) FROM execution_entity WHERE status = %s AND "createdAt" >= %s'
    stalled_sql = (
        'SELECT count(*) FROM execution_entity e JOIN execution_data d ON d."executionId" = e.id '
        "WHERE e.status = 'error' AND e.\"createdAt\" >= %s AND position(%s in d.data) > 0"
    )
    progress_sql = (
        "SELECT id::text FROM execution_entity WHERE status IN ('new', 'running') "
        'AND "createdAt" < now() - make_interval(secs => %s) ORDER BY id LIMIT 1000'
    )
    try:
        with psycopg.connect(
            target.n8n_database_url or "", connect_timeout=max(2, int(ctx.remaining())), autocommit=True
        ) as conn:
            row = conn.execute(crashed_sql, ("crashed", since)).fetchone()
            stalled_row = conn.execute(stalled_sql, (since, STALLED_MESSAGE)).fetchone()
            in_progress = [r[0] for r in conn.execute(progress_sql, (target.orphan_grace_seconds,)).fetchall()]
    except psycopg.Error as exc:
        builder.add("crashed", Status.UNKNOWN, f"executions not checked: {ctx.redactor.exception(exc)}")
        return
    crashed = int(row[0]) if row else 0
    stalled = int(stalled_row[0]) if stalled_row else 0
    orphans = [execution for execution in in_progress if queued is not None and execution not in queued]
    total = crashed + stalled + len(orphans)
    builder.measure(Measurement("crashed_executions", crashed, Unit.COUNT, minimum=0))
    builder.measure(Measurement("stalled_executions", stalled, Unit.COUNT, minimum=0))
    builder.measure(
        Measurement("lost_executions", total, Unit.COUNT, target.crashed_warning, target.crashed_critical, 0)
    )
    status = (
        Status.CRITICAL
        if total >= target.crashed_critical
        else Status.WARNING
        if total >= target.crashed_warning
        else Status.OK
    )
    shown = ", ".join(orphans[:10]) + (" ..." if len(orphans) > 10 else "")
    text = (
        f"{crashed} crashed and {stalled} stalled (worker died, job failed by Bull) execution(s) "
        f"in the last {target.crashed_window_minutes:g} min"
    ) + (f"; {len(orphans)} orphaned (running in n8n, no job in Redis: ids {shown})" if orphans else "")
    builder.add(
        "crashed",
        status,
        text,
        "A worker (or the main process) died under running executions and n8n never re-runs them (no retry "
        "attempts, maxStalledCount 0). Open them in the editor (Executions, by id), take their trigger data "
        "(Telegram: the update; gone for stalled ones, whose data n8n replaced by the error: find the update in "
        "the sender's retry or the gateway log) and replay what matters; n8n marks orphans crashed at its next "
        "queue recovery "
        "(N8N_EXECUTIONS_QUEUE_RECOVERY_INTERVAL) or at the main's restart. See docs/runbook.md.",
    )
