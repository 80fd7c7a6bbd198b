"""Redis: the queue-mode broker between the n8n main process and its workers."""

from __future__ import annotations

from infra.model import HealthCheck, PortBinding, SecretRef, ServiceSpec, VolumeMount
from infra.services.common import container_name, labels
from infra.settings import Publish, Settings

NAME = "redis"
PORT = 6379
DATA_VOLUME = "redis-data"


def build(settings: Settings) -> ServiceSpec:
    """Password-protected, append-only Redis that never evicts queue entries.

    Bull keeps every job in Redis (the `bull:jobs:wait` list holds the ids of executions not yet run): an
    evicted key is a lost execution, hence `noeviction` (Redis then refuses writes when full, which n8n reports
    as an error instead of silently dropping work). AOF with fsync every second: a `docker restart` (SIGTERM)
    flushes it completely; only a host crash can lose the last second. The health probe checks all three.
    """
    maxmemory_mb = max(32, settings.redis.memory_mb * 3 // 4)
    server = (
        'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes --appendfsync everysec '
        f"--maxmemory {maxmemory_mb}mb --maxmemory-policy noeviction"
    )
    redis = settings.redis
    ports = (
        (PortBinding(PORT, redis.host_port, "127.0.0.1", setting="redis.hostPort"),)
        if redis.publish is Publish.LOOPBACK
        else ()
    )
    return ServiceSpec(
        name=NAME,
        kind="redis",
        container_name=container_name(settings, NAME),
        image=settings.images.redis,
        # A shell so the password comes from the environment, not from the visible command line.
        command=("sh", "-c", server),
        env=(("REDIS_PASSWORD", SecretRef("redisPassword")),),
        ports=ports,
        mounts=(VolumeMount(DATA_VOLUME, "/data"),),
        # Redis writes its AOF and RDB files to /data only.
        read_only_rootfs=True,
        tmpfs=(("/tmp", "size=8m,mode=1777"),),  # noqa: S108 - a container-private tmpfs, not a host path
        healthcheck=HealthCheck(
            test=("CMD-SHELL", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG'),
            interval_s=3,
            retries=20,
            start_period_s=5,
        ),
        restart=settings.restart_policy,
        memory_mb=settings.redis.memory_mb,
        user="redis",
        aliases=(NAME,),
        labels=labels(settings, NAME),
    )
