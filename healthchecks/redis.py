"""Redis, the queue-mode broker: reachable with its password, memory headroom, eviction policy, persistence.

Bull keeps every queued n8n execution in Redis, so the things that lose work are checked here: an eviction
policy other than `noeviction` (Redis would silently drop job keys when full), memory near `maxmemory` (Redis
then refuses writes: n8n cannot enqueue), AOF off (a restart loses the queue) or failing (a failed AOF write
makes Redis refuse writes). Facts come from `INFO` (redis.io/docs/latest/commands/info: `used_memory`,
`maxmemory`, `maxmemory_policy`, `aof_enabled`, `aof_last_write_status`, `aof_last_bgrewrite_status`,
`rdb_last_bgsave_status`, `loading`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from healthchecks.context import ProbeContext
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

REQUIRED_POLICY = "noeviction"


@dataclass(frozen=True)
class RedisTarget:
    """The Redis n8n queues on (a `redis://:password@host:port/db` URL) and its memory thresholds."""

    url: str
    memory_warning_percent: float = 80.0
    memory_critical_percent: float = 95.0
    require_aof: bool = True


def connect(url: str, ctx: ProbeContext) -> redis.Redis:
    """A client bounded by the probe's remaining budget; PING proves address and password at once."""
    budget = max(1.0, ctx.remaining())
    client = redis.Redis.from_url(
        url, socket_timeout=budget, socket_connect_timeout=budget, decode_responses=True, client_name="kaizenity-health"
    )
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise Problem(
            "connect",
            Status.CRITICAL,
            f"Redis rejected the password ({ctx.redactor.exception(exc)})",
            "The password in KAIZENITY_REDIS_URL differs from the server's requirepass: use the stack's "
            "redisPassword secret (n8n and its workers need the same one).",
        ) from None
    except redis.RedisError as exc:
        raise Problem(
            "connect",
            Status.CRITICAL,
            f"cannot reach Redis ({ctx.redactor.exception(exc)})",
            "Redis is down or unreachable: `docker ps` / `docker logs` the redis container (out of memory? AOF "
            "corrupt at start?), then restart it. In queue mode nothing executes without it.",
        ) from None
    return client


def probe(target: RedisTarget, ctx: ProbeContext) -> ProbeResult:
    """PING (with auth), then memory, eviction policy and persistence from one INFO call."""
    builder = ResultBuilder("redis")
    try:
        client = connect(target.url, ctx)
        with client:
            started = ctx.elapsed()
            info: dict[str, Any] = client.info("everything")
            builder.measure(Measurement("latency", round(ctx.elapsed() - started, 4), Unit.SECONDS, minimum=0))
            builder.add("connect", Status.OK, f"PONG (Redis {info.get('redis_version', '?')})")
            _check_loading(info, builder)
            _check_memory(info, target, builder)
            _check_policy(info, builder)
            _check_persistence(info, target, builder)
    except Problem as problem:
        problem.record(builder)
    except redis.RedisError as exc:
        builder.add("info", Status.UNKNOWN, f"INFO failed: {ctx.redactor.exception(exc)}", "Check Redis by hand.")
    return builder.build()


def _check_loading(info: dict[str, Any], builder: ResultBuilder) -> None:
    if int(info.get("loading", 0)):
        builder.add(
            "loading",
            Status.WARNING,
            "Redis is loading its dataset (just restarted): queue commands wait until it is done",
            "Wait; if it lasts, the AOF is large: check `aof_base_size` and rewrite it (BGREWRITEAOF).",
        )


def _check_memory(info: dict[str, Any], target: RedisTarget, builder: ResultBuilder) -> None:
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    builder.measure(Measurement("used_memory", used, Unit.BYTES, minimum=0, maximum=limit or None))
    if not limit:
        builder.add(
            "memory",
            Status.WARNING,
            f"no maxmemory set ({used / 2**20:.1f} MiB used): the container's memory limit kills Redis instead",
            "Set `--maxmemory` below the container limit (infra/services/redis.py does: 3/4 of redis.memoryMb).",
        )
        return
    percent = 100.0 * used / limit
    builder.measure(
        Measurement(
            "memory_used", round(percent, 1), Unit.PERCENT, target.memory_warning_percent,
            target.memory_critical_percent, 0, 100,
        )
    )  # fmt: skip
    status = (
        Status.CRITICAL
        if percent >= target.memory_critical_percent
        else Status.WARNING
        if percent >= target.memory_warning_percent
        else Status.OK
    )
    builder.add(
        "memory",
        status,
        f"memory {percent:.0f}% of maxmemory ({used / 2**20:.1f} of {limit / 2**20:.0f} MiB)",
        "With noeviction Redis refuses writes when full and n8n cannot enqueue executions: find big keys "
        "(`redis-cli --bigkeys`; old bull:jobs:completed/failed entries), let n8n prune them (QUEUE_BULL_* / "
        "EXECUTIONS_DATA_PRUNE), or raise kaizenity:redis.memoryMb.",
    )


def _check_policy(info: dict[str, Any], builder: ResultBuilder) -> None:
    policy = str(info.get("maxmemory_policy", "?"))
    if policy == REQUIRED_POLICY:
        builder.add("eviction", Status.OK, "maxmemory-policy noeviction")
        return
    builder.add(
        "eviction",
        Status.CRITICAL,
        f"maxmemory-policy is {policy}: Redis may evict Bull's job keys and lose queued executions",
        "Set `--maxmemory-policy noeviction` (CONFIG SET maxmemory-policy noeviction now, and in the redis "
        "service command so it survives a restart).",
    )


def _check_persistence(info: dict[str, Any], target: RedisTarget, builder: ResultBuilder) -> None:
    fix_aof = (
        "Redis cannot write its append-only file: check the volume's free space and permissions "
        "(`docker exec <redis> df -h /data`), then `redis-cli BGREWRITEAOF`. Until then Redis refuses writes."
    )
    if not int(info.get("aof_enabled", 0)):
        status = Status.CRITICAL if target.require_aof else Status.OK
        builder.add(
            "aof",
            status,
            "AOF is off: a Redis restart loses every queued execution",
            "Start Redis with `--appendonly yes` (CONFIG SET appendonly yes now); infra/services/redis.py does.",
        )
    elif info.get("aof_last_write_status", "ok") != "ok":
        builder.add("aof", Status.CRITICAL, "the last AOF write failed", fix_aof)
    elif info.get("aof_last_bgrewrite_status", "ok") != "ok":
        builder.add("aof", Status.WARNING, "the last AOF rewrite failed (the AOF keeps growing)", fix_aof)
    else:
        builder.add("aof", Status.OK, "AOF on, last write ok")
    if info.get("rdb_last_bgsave_status", "ok") != "ok":
        builder.add(
            "rdb",
            Status.WARNING,
            "the last RDB snapshot failed (with stop-writes-on-bgsave-error Redis refuses writes)",
            "Check free space on the Redis volume; `redis-cli BGSAVE` to retry.",
        )
