"""`kaizenity rotate redisPassword --local` on the queue-mode stack (issue 10): Redis, the n8n main process and every
worker move to the new password together, the old one is refused, and webhook traffic keeps reaching the workers.

Reuses the session's queue stack (`kaizenity_queue_stack`, stacks/Pulumi.ci-queue.yaml: main + Redis + 2 workers)
instead of a stack of its own. The fixture starts it unrecorded (`record=False`), so the test records it in a
private state directory first, as `kaizenity up --local` would, and runs
`kaizenity rotate redisPassword --local --prefix <the fixture's prefix>` through click, in this process. The
fixture's endpoints object is then updated to the rotated values, so later tests of the session (and the scaling
code, which renders workers from `stack_secrets()`) use the password the containers now carry.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import httpx
import psycopg
import pytest
import redis
from click.testing import CliRunner

from healthchecks.config import build_plan
from healthchecks.report import Report
from healthchecks.result import Status
from healthchecks.runner import run
from infra.local_endpoints import LocalEndpoints
from infra.local_state import load_state, save_state
from infra.rotation_local import carriers, model_of
from kaizenity.rotation_cli import rotate
from tests.integration.waiting import wait_until

pytestmark = pytest.mark.integration
WORKERS = ("n8n-worker-1", "n8n-worker-2")
CARRIERS = ("redis", "n8n", *WORKERS)  # every container of ci-queue whose environment holds redisPassword
_update_ids = count(890_000)  # apart from test_queue_mode.py's 880_000 range: both files share one database


def names(found: list[Any]) -> set[str]:
    return {spec.name for spec, _refs in found}


def container(stack: LocalEndpoints, service: str) -> Any:
    return docker.from_env().containers.get(stack.containers[service])


def health(stack: LocalEndpoints, *probes: str) -> Report:
    settings = {
        "defaults": {"timeout": 8.0},
        "database": {"url": stack.database_url},
        "n8n": {"url": stack.n8n_url, "database_url": stack.n8n_reader_database_url, "heartbeat": False},
        "redis": {"url": stack.redis_url},
        "queue": {"expected_workers": len(WORKERS), "n8n_database_url": stack.n8n_database_url},
    }
    return run(build_plan(settings).select(probes, []))


# What says "up and connected to Redis", checked OK: n8n main's process, readiness and active seed workflows, every
# Redis check (password accepted, AOF, noeviction), the live-worker count in Redis (each worker's registered Bull
# connection). Not the backlog/failed-job checks: earlier tests of the session (test_queue_mode.py kills workers)
# may leave failed jobs behind, which says nothing about this rotation.
CONNECTED = {"n8n": ("process", "ready", "workflows"), "queue": ("workers",)}


def all_ok(stack: LocalEndpoints) -> bool:
    """n8n main, Redis and the full worker pool are up and connected, by the health probes."""
    report = health(stack, "n8n", "redis", "queue")
    results = {r.probe: r for r in report.results}
    if results["redis"].status is not Status.OK:
        return False
    checks = {(probe, c.name): c for probe, r in results.items() for c in r.checks}
    if any(
        checks.get((p, n)) is None or checks[(p, n)].status is not Status.OK for p, ns in CONNECTED.items() for n in ns
    ):
        return False
    return checks[("queue", "workers")].text == f"{len(WORKERS)} live worker(s)"


def post_update(stack: LocalEndpoints, update_id: int) -> int:
    """One Telegram update through the gateway; n8n's HTTP status (200 once a worker stored it, issue 13)."""
    assert stack.ca_file
    url = f"{stack.webhook_base_url}telegram/{stack.secrets['telegramWebhookPathToken']}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": stack.secrets["telegramWebhookSecret"]}
    update = {"update_id": update_id, "message": {"message_id": 1, "date": 0, "chat": {"id": 78}, "text": "rot"}}
    with httpx.Client(verify=ssl.create_default_context(cafile=stack.ca_file), timeout=30) as client:
        try:
            return client.post(url, json=update, headers=headers).status_code
        except httpx.HTTPError:
            return 0


def stored(stack: LocalEndpoints, update_id: int) -> bool:
    assert stack.database_url
    with psycopg.connect(stack.database_url, autocommit=True, connect_timeout=5) as conn:
        sql = "SELECT count(*) FROM ops.messages WHERE channel = 'telegram' AND idempotency_key = %s"
        row = conn.execute(sql, (str(update_id),)).fetchone()
    return bool(row and row[0] == 1)


def delivered(stack: LocalEndpoints, what: str) -> int:
    """Send an update until n8n acknowledges it, then wait until its row is stored; returns its id."""
    update_id = next(_update_ids)
    wait_until(lambda: post_update(stack, update_id) == 200, 120, f"the webhook to acknowledge {what}")
    wait_until(lambda: stored(stack, update_id), 30, f"{what} stored")
    return update_id


def worker_executions(stack: LocalEndpoints, service: str, since: datetime) -> set[str]:
    """Execution ids a container logged as started by a worker since a moment (the inbound workflow saves no
    execution, so the workers' log lines are the record of where it ran; dist/scaling/job-processor.js)."""
    text = container(stack, service).logs(since=since).decode(errors="replace")
    return set(re.findall(r"Worker started execution (\d+) ", text))


def redis_reply(url: str, *command: str) -> str:
    """Redis's raw first reply line to one command (RESP over a socket: redis-py strips the error codes)."""
    address = urlsplit(url)
    assert address.hostname
    assert address.port
    request = f"*{len(command)}\r\n" + "".join(f"${len(part.encode())}\r\n{part}\r\n" for part in command)
    with socket.create_connection((address.hostname, address.port), timeout=5) as conn:
        conn.sendall(request.encode())
        return conn.makefile("rb").readline().decode().strip()


@pytest.fixture
def recorded(kaizenity_queue_stack: LocalEndpoints, tmp_path: Path) -> Iterator[LocalEndpoints]:
    """The session's queue stack recorded in a private state directory (what `rotate_local` reads and writes);
    afterwards the fixture's endpoints follow whatever the state says now, even if the test failed half-way."""
    stack = kaizenity_queue_stack
    assert stack.redis_url, "the queue stack publishes Redis on loopback"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
        save_state(stack)
        try:
            yield stack
        finally:
            now = load_state(stack.prefix)
            if now is not None:
                for field in fields(LocalEndpoints):
                    setattr(stack, field.name, getattr(now, field.name))


def test_redis_password_rotation_moves_main_and_every_worker_and_loses_no_webhook(recorded: LocalEndpoints) -> None:
    stack = recorded
    assert stack.redis_url
    old_password = stack.secrets["redisPassword"]
    old_url = stack.redis_url
    wait_until(lambda: all_ok(stack), 180, "n8n, Redis and 2 live workers before the rotation")
    before = delivered(stack, "an update before the rotation")
    marker = f"kaizenity:test:rotation:{before}"
    with redis.Redis.from_url(old_url) as admin:
        admin.set(marker, "kept")  # Redis's data (AOF on its volume) must survive the recreated container
    old_ids = {service: container(stack, service).id for service in CARRIERS}

    # The containers the rotation recreates come from the settings the fixture's start recorded (not the stack file)
    assert names(carriers(model_of(stack), "redisPassword")) == set(CARRIERS)
    assert stack.settings_config["n8n"]["workers"] == len(WORKERS)

    cli = CliRunner().invoke(rotate, ["redisPassword", "--stack", stack.stack, "--local", "--prefix", stack.prefix])
    print(cli.output)
    assert cli.exit_code == 0, cli.output
    rotated = load_state(stack.prefix)
    assert rotated is not None

    new_password = rotated.secrets["redisPassword"]
    assert new_password != old_password
    assert rotated.redis_url
    assert rotated.redis_url != old_url
    # The new password works against Redis, and Redis kept its data; the old one and none at all are refused.
    with redis.Redis.from_url(rotated.redis_url, socket_timeout=5) as admin:
        assert admin.ping()
        assert admin.get(marker) == b"kept"
        admin.delete(marker)
    assert redis_reply(rotated.redis_url, "AUTH", old_password).startswith("-WRONGPASS"), "the old one is refused"
    assert redis_reply(rotated.redis_url, "PING").startswith("-NOAUTH"), "and so is no password"
    assert redis_reply(rotated.redis_url, "AUTH", new_password) == "+OK"
    # Every carrier is a new container holding the new password (and not the old one), running and healthy.
    for service in CARRIERS:
        now = container(stack, service)
        assert now.id != old_ids[service], f"{service} was not recreated"
        assert now.attrs["State"]["Health"]["Status"] == "healthy", service
        env = "\n".join(now.attrs["Config"]["Env"])
        assert new_password in env, service
        assert old_password not in env, service
    # n8n main and both workers are connected to Redis again (the queue probe counts live workers in Redis).
    wait_until(lambda: all_ok(rotated), 120, "n8n, Redis and 2 live workers after the rotation")
    # Traffic after the rotation: acknowledged, executed by a worker (not by the main process) and stored.
    since = datetime.now(UTC) - timedelta(seconds=1)
    after = delivered(rotated, "an update after the rotation")
    on_workers = set().union(*(worker_executions(rotated, name, since) for name in WORKERS))
    assert on_workers, "a worker logged the execution of the update sent after the rotation"
    assert not worker_executions(rotated, "n8n", since), "the main process did not run it itself"
    assert stored(rotated, before), "the update from before the rotation is still stored"
    assert after != before


def test_the_shared_queue_stack_is_usable_after_the_rotation(kaizenity_queue_stack: LocalEndpoints) -> None:
    """Later tests of the session get endpoints that match the containers: the fixture's redis_url and secrets hold
    the password Redis, n8n and the workers now carry (whether or not the rotation above ran)."""
    stack = kaizenity_queue_stack
    assert stack.redis_url
    password = stack.secrets["redisPassword"]
    assert urlsplit(stack.redis_url).password == password
    for service in CARRIERS:
        assert password in "\n".join(container(stack, service).attrs["Config"]["Env"]), service
    wait_until(lambda: all_ok(stack), 120, "n8n, Redis and 2 live workers through the fixture's endpoints")
