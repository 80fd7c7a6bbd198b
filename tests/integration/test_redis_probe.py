"""The redis probe and the n8n queue check against a real Redis (the offline image, started with the model's own
command): healthy first, then each way Redis or the queue loses work, as the probes must report it.

Bull's key layout used to stage queue states is bull's lib/queue.js (wait/active lists, `<id>` hash with
`timestamp`, `<id>:lock`, meta-paused); the worker connection is what lib/worker.js names and lib/queue.js
getNextJob blocks with (BRPOPLPUSH wait -> active).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import redis

from healthchecks.context import ProbeContext
from healthchecks.n8n_queue import QueueTarget
from healthchecks.n8n_queue import probe as queue_probe
from healthchecks.redaction import Redactor
from healthchecks.redis import RedisTarget
from healthchecks.redis import probe as redis_probe
from healthchecks.result import ProbeResult, Status
from infra.host_ports import free_port
from infra.secret_generation import placeholder_secrets
from infra.services import redis as redis_service
from infra.settings_validation import parse_settings
from infra.versions import offline_images

pytestmark = pytest.mark.integration
PASSWORD = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A Redis container run exactly as the model renders it (command, password from the environment)."""
    settings = parse_settings("t", {**placeholder_secrets(), "redisPassword": PASSWORD})
    spec = redis_service.build(settings)
    port = free_port()
    client = docker.from_env()
    container = client.containers.run(
        offline_images()["redis"],
        command=list(spec.command or ()),
        environment={"REDIS_PASSWORD": PASSWORD},
        ports={"6379/tcp": ("127.0.0.1", port)},
        name=f"kzt-redisprobe-{secrets.token_hex(3)}",
        detach=True,
    )
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    try:
        _wait_ready(url)
        yield url
    finally:
        container.remove(force=True, v=True)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def admin(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("appendonly", "yes")
    client.config_set("maxmemory", "96mb")
    client.flushdb()
    client.close()


def ctx() -> ProbeContext:
    redactor = Redactor()
    redactor.add(PASSWORD)
    return ProbeContext(timeout=5.0, redactor=redactor)


def check(result: ProbeResult, name: str) -> Any:
    return next(c for c in result.checks if c.name == name)


def test_model_redis_is_healthy(admin: redis.Redis, redis_url: str) -> None:
    result = redis_probe(RedisTarget(redis_url), ctx())
    assert result.status is Status.OK, result
    assert check(result, "eviction").text == "maxmemory-policy noeviction"
    assert "AOF on" in check(result, "aof").text
    assert {m.name for m in result.measurements} >= {"used_memory", "memory_used", "latency"}


def test_wrong_password_is_critical_and_not_leaked(redis_url: str) -> None:
    wrong = redis_url.replace(PASSWORD, "not-the-password-at-all")
    result = redis_probe(RedisTarget(wrong), ctx())
    assert result.status is Status.CRITICAL
    assert "rejected the password" in result.summary
    assert PASSWORD not in result.summary + result.remediation


def test_unreachable_redis_is_critical() -> None:
    result = redis_probe(RedisTarget(f"redis://:x@127.0.0.1:{free_port()}/0"), ctx())
    assert result.status is Status.CRITICAL
    assert "cannot reach Redis" in result.summary


def test_evicting_policy_is_critical(admin: redis.Redis, redis_url: str) -> None:
    admin.config_set("maxmemory-policy", "allkeys-lru")
    result = redis_probe(RedisTarget(redis_url), ctx())
    assert result.status is Status.CRITICAL
    assert "allkeys-lru" in check(result, "eviction").text


def test_aof_off_is_critical(admin: redis.Redis, redis_url: str) -> None:
    admin.config_set("appendonly", "no")
    result = redis_probe(RedisTarget(redis_url), ctx())
    assert check(result, "aof").status is Status.CRITICAL
    assert "restart loses" in check(result, "aof").text


def test_memory_near_maxmemory_is_critical(admin: redis.Redis, redis_url: str) -> None:
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", str(int(used * 1.02)))
    result = redis_probe(RedisTarget(redis_url), ctx())
    assert check(result, "memory").status is Status.CRITICAL


def _enqueue(client: redis.Redis, job_id: str, age_s: float) -> None:
    """A job as Bull's addJob leaves it: its hash (timestamp in ms) and its id LPUSHed on the wait list."""
    client.hset(f"bull:jobs:{job_id}", mapping={"data": "{}", "timestamp": int((time.time() - age_s) * 1000)})
    client.lpush("bull:jobs:wait", job_id)


class FakeWorker:
    """A connection shaped like a Bull worker's blocking client: named `bull:<b64 jobs>`, in BRPOPLPUSH."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, client_name="bull:am9icw==")
        self.thread = threading.Thread(target=self._block, daemon=True)
        self.thread.start()
        time.sleep(0.3)

    def _block(self) -> None:
        # close() closes the connection under the blocked call: the point of the exercise
        with contextlib.suppress(redis.RedisError, ValueError, OSError):
            self.client.brpoplpush("bull:jobs:never", "bull:jobs:active-none", timeout=30)

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()


def test_no_live_worker_with_a_backlog_is_critical(admin: redis.Redis, redis_url: str) -> None:
    for job_id, age in (("1", 400.0), ("2", 10.0)):
        _enqueue(admin, job_id, age)
    # The main process's connections carry no name (bull 4.16.4 names only a worker's blocking connection).
    main_client = redis.Redis.from_url(redis_url, client_name="kaizenity-main-like")
    main_client.ping()
    result = queue_probe(QueueTarget(redis_url, expected_workers=2), ctx())
    assert result.status is Status.CRITICAL
    assert "no live worker (2 job(s) waiting, oldest 4" in check(result, "workers").text
    assert check(result, "backlog").status is Status.CRITICAL  # oldest 400 s >= 300 s
    assert "kaizenity scale" in result.remediation
    main_client.close()


def test_live_workers_are_counted_immediately(admin: redis.Redis, redis_url: str) -> None:
    worker = FakeWorker(redis_url)
    try:
        result = queue_probe(QueueTarget(redis_url, expected_workers=1), ctx())
        assert check(result, "workers").text == "1 live worker(s)"
        assert result.status is Status.OK, result
    finally:
        worker.close()
    deadline = time.monotonic() + 5
    while check(queue_probe(QueueTarget(redis_url), ctx()), "workers").status is not Status.CRITICAL:
        assert time.monotonic() < deadline, "a closed worker connection must count as dead at once"
        time.sleep(0.2)


def test_fewer_workers_than_expected_is_a_warning(admin: redis.Redis, redis_url: str) -> None:
    worker = FakeWorker(redis_url)
    try:
        result = queue_probe(QueueTarget(redis_url, expected_workers=2), ctx())
        assert check(result, "workers").status is Status.WARNING
        assert "1 of 2 workers live" in result.summary
    finally:
        worker.close()


def test_orphaned_active_job_and_paused_queue(admin: redis.Redis, redis_url: str) -> None:
    admin.hset("bull:jobs:7", mapping={"timestamp": int(time.time() * 1000)})
    admin.lpush("bull:jobs:active", "7")  # active but no bull:jobs:7:lock: its worker died
    admin.lpush("bull:jobs:active", "8")
    admin.set("bull:jobs:8:lock", "token")
    admin.set("bull:jobs:meta-paused", "1")
    worker = FakeWorker(redis_url)
    try:
        result = queue_probe(QueueTarget(redis_url), ctx())
    finally:
        worker.close()
    assert "1 active job(s) without a worker lock" in check(result, "orphaned").text
    assert check(result, "paused").status is Status.CRITICAL
    assert {m.name: m.value for m in result.measurements}["jobs_active"] == 2


@pytest.mark.parametrize(
    ("during_the_wait", "orphaned"),
    [
        ("lock taken", 0),  # bull's getNextJob: BRPOPLPUSH wait -> active, then moveToActive takes the lock
        ("job finished", 0),  # moveToFinished: lock released, job gone from the active list
        ("nothing", 1),  # a dead worker's job: lockless until the stalled check fails it
    ],
)
def test_a_lockless_active_job_is_orphaned_only_if_still_lockless_a_moment_later(
    admin: redis.Redis, redis_url: str, during_the_wait: str, orphaned: int
) -> None:
    """The false "orphaned" seen once on a busy queue stack: a live worker's job read between the two steps."""
    from healthchecks.n8n_queue import read_state

    admin.hset("bull:jobs:9", mapping={"timestamp": int(time.time() * 1000)})
    admin.lpush("bull:jobs:active", "9")
    waits: list[float] = []

    def meanwhile(seconds: float) -> None:
        waits.append(seconds)
        if during_the_wait == "lock taken":
            admin.set("bull:jobs:9:lock", "token")
        elif during_the_wait == "job finished":
            admin.lrem("bull:jobs:active", 0, "9")

    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        state = read_state(client, QueueTarget(redis_url), ctx(), sleep=meanwhile)
    assert state.orphaned_active == orphaned
    assert waits == [1.0], "one confirmation wait, only because a lockless active job was seen"
