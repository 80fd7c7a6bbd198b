"""Assemble the whole environment model from validated settings, and the URLs derived from it."""

from __future__ import annotations

from infra.model import Endpoints, EnvironmentModel, NetworkSpec, ServiceSpec, VolumeSpec
from infra.services import backup, gateway, monitoring, n8n, postgres, redis
from infra.services.common import labels
from infra.settings import Publish, Settings, TlsMode


def build_environment(settings: Settings) -> EnvironmentModel:
    """Every service, volume and endpoint of one environment, in dependency order."""
    services: list[ServiceSpec] = [postgres.build(settings)]
    if settings.n8n.queue_mode:
        services.append(redis.build(settings))
    services.append(n8n.build(settings))
    services += n8n.build_workers(settings)
    services += n8n.build_webhook_processors(settings)
    services.append(gateway.build(settings))
    if settings.backups.enabled:
        services.append(backup.build(settings))
    services += monitoring.build(settings, services)
    # Volumes in first-use order: exactly the ones some service mounts.
    used = dict.fromkeys(mount.volume for service in services for mount in service.mounts)
    volumes = tuple(VolumeSpec(name, _volume_docker_name(settings, name)) for name in used)
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
    """`<prefix>-<name>`; the backup archive may be named in the settings (a volume that outlives the prefix)."""
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
        database_superuser=pg.superuser,
        n8n_database_user=n8n_settings.db_user,
        editor_user=settings.gateway.editor_user,
        local_ca_file=gateway.LOCAL_CA_FILE if settings.gateway.tls_mode is TlsMode.INTERNAL else None,
    )


def loopback_database_url(model: EnvironmentModel, password: str, *, n8n_database: bool = False) -> str | None:
    """The libpq URL of the platform database (superuser) or of n8n's database (n8n's role) on the Docker host's
    loopback, where `postgres.publish: loopback` puts it; None when the database is not published.

    The one place this URL is built: the Pulumi program (migrations, seeding, the `databaseUrl` output) and the
    local engine (endpoints, state file) both call it.
    """
    ep = model.endpoints
    if ep.database_host_port is None:
        return None
    user, name = (
        (ep.n8n_database_user, ep.n8n_database_name) if n8n_database else (ep.database_superuser, ep.database_name)
    )
    return postgres.dsn(user, password, "127.0.0.1", ep.database_host_port, name)


def loopback_n8n_reader_url(model: EnvironmentModel, password: str) -> str | None:
    """The URL `kaizenity health` reads n8n's workflows and executions with: n8n's database on the host's loopback,
    as the read-only login the seeder makes (bootstrap/app_login.py N8N_READER_USER); None when not published."""
    from bootstrap.app_login import N8N_READER_USER

    ep = model.endpoints
    if ep.database_host_port is None:
        return None
    return postgres.dsn(N8N_READER_USER, password, "127.0.0.1", ep.database_host_port, ep.n8n_database_name)
