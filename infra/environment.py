"""Assemble the whole environment model from validated settings."""

from __future__ import annotations

from infra.model import Endpoints, EnvironmentModel, NetworkSpec, ServiceSpec, VolumeSpec
from infra.services import backup, gateway, n8n, postgres, redis
from infra.services.common import labels
from infra.settings import Publish, Settings

_VOLUME_PURPOSES = {
    postgres.DATA_VOLUME: "PostgreSQL data directory (platform and n8n databases)",
    n8n.DATA_VOLUME: "n8n user folder (config, binary data)",
    "caddy-data": "Caddy certificates and ACME account",
    "caddy-config": "Caddy autosaved configuration",
    redis.DATA_VOLUME: "Redis append-only file (queue mode)",
    backup.ARCHIVE_VOLUME: "backup archive: streamed WAL and base backups (outside the data volume)",
}


def build_environment(settings: Settings) -> EnvironmentModel:
    """Every service, volume and endpoint of one environment, in dependency order."""
    services: list[ServiceSpec] = [postgres.build(settings)]
    if settings.n8n.queue_mode:
        services.append(redis.build(settings))
    services.append(n8n.build(settings))
    services += n8n.build_workers(settings)
    services.append(gateway.build(settings))
    if settings.backups.enabled:
        services.append(backup.build(settings))
    used = {mount.volume for service in services for mount in service.mounts}
    volumes = tuple(
        VolumeSpec(name, _volume_docker_name(settings, name), purpose)
        for name, purpose in _VOLUME_PURPOSES.items()
        if name in used
    )
    return EnvironmentModel(
        stack=settings.stack,
        prefix=settings.prefix,
        network=NetworkSpec(docker_name=f"{settings.prefix}-net"),
        volumes=volumes,
        services=tuple(services),
        endpoints=_endpoints(settings),
        labels=labels(settings),
        protect_volumes=settings.protect_volumes,
    )


def _volume_docker_name(settings: Settings, name: str) -> str:
    if name == backup.ARCHIVE_VOLUME and settings.backups.archive_volume:
        return settings.backups.archive_volume
    return f"{settings.prefix}-{name}"


def _endpoints(settings: Settings) -> Endpoints:
    url = settings.gateway.url
    pg, n8n_settings = settings.postgres, settings.n8n
    return Endpoints(
        gateway_url=url,
        webhook_base_url=f"{url}/webhook/",
        n8n_internal_url=f"http://{n8n.NAME}:{n8n.PORT}",
        n8n_host_url=f"http://127.0.0.1:{n8n_settings.host_port}" if n8n_settings.publish is Publish.LOOPBACK else None,
        database_host=postgres.NAME,
        database_port=postgres.PORT,
        database_name=pg.database,
        database_host_port=pg.host_port if pg.publish is Publish.LOOPBACK else None,
        n8n_database_name=n8n_settings.database,
    )
