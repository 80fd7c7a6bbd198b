"""Redis: the queue-mode broker between the n8n main process and its workers."""

from __future__ import annotations

from infra.model import HealthCheck, SecretRef, ServiceSpec, VolumeMount
from infra.services.common import container_name, labels
from infra.settings import Settings

NAME = "redis"
PORT = 6379
DATA_VOLUME = "redis-data"


def build(settings: Settings) -> ServiceSpec:
    """Password-protected, append-only Redis that never evicts queue entries."""
    maxmemory_mb = max(32, settings.redis.memory_mb * 3 // 4)
    server = (
        'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes '
        f"--maxmemory {maxmemory_mb}mb --maxmemory-policy noeviction"
    )
    return ServiceSpec(
        name=NAME,
        kind="redis",
        container_name=container_name(settings, NAME),
        image=settings.images.redis,
        # A shell so the password comes from the environment, not from the visible command line.
        command=("sh", "-c", server),
        env=(("REDIS_PASSWORD", SecretRef("redisPassword")),),
        mounts=(VolumeMount(DATA_VOLUME, "/data"),),
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
