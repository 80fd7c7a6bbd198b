"""n8n: the main process (editor, API, webhooks) and, in queue mode, its workers."""

from __future__ import annotations

from infra.model import EnvValue, HealthCheck, PortBinding, SecretRef, ServiceSpec, VolumeMount
from infra.services import postgres, redis
from infra.services.common import container_name, labels
from infra.settings import Publish, Settings

NAME = "n8n"
PORT = 5678
DATA_VOLUME = "n8n-data"
USER_FOLDER = "/home/node/.n8n"
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/healthz/readiness"
# Public (no login) and registered with the REST API, after `/healthz/readiness` turns 200: the first request
# the seeder makes (workflows/n8n_api.py). Checking it too makes the health check mean "the editor and its REST
# API answer", which n8n otherwise only logs ("Editor is now accessible via"), and a log line is nothing
# `pulumi-docker` can wait for.
REST_SETTINGS_PATH = "/rest/settings"

# `node` is in every n8n image (official and offline); wget/curl are not guaranteed to be.
_HTTP_CHECK = (
    "Promise.all({urls}.map(u => fetch(u))).then(rs => process.exit(rs.every(r => r.ok) ? 0 : 1), "
    "() => process.exit(1))"
)


def node_http_check(*paths: str, port: int = PORT) -> tuple[str, ...]:
    """A Docker health check that succeeds when n8n answers every one of `paths` with 2xx."""
    urls = "[" + ", ".join(f"'http://127.0.0.1:{port}{path}'" for path in paths) + "]"
    return ("CMD", "node", "-e", _HTTP_CHECK.format(urls=urls))


def shared_env(settings: Settings) -> tuple[tuple[str, EnvValue], ...]:
    """Environment common to the main process and workers: database, encryption key, queue, privacy."""
    n8n = settings.n8n
    env: list[tuple[str, EnvValue]] = [
        ("DB_TYPE", "postgresdb"),
        ("DB_POSTGRESDB_HOST", postgres.NAME),
        ("DB_POSTGRESDB_PORT", str(postgres.PORT)),
        ("DB_POSTGRESDB_DATABASE", n8n.database),
        ("DB_POSTGRESDB_USER", n8n.db_user),
        ("DB_POSTGRESDB_PASSWORD", SecretRef("n8nDbPassword")),
        # Every process sharing the database must use the same key, or stored credentials fail to decrypt.
        ("N8N_ENCRYPTION_KEY", SecretRef("n8nEncryptionKey")),
        ("GENERIC_TIMEZONE", n8n.timezone),
        ("TZ", n8n.timezone),
        ("N8N_LOG_LEVEL", n8n.log_level),
        ("N8N_DIAGNOSTICS_ENABLED", "false"),
        ("N8N_VERSION_NOTIFICATIONS_ENABLED", "false"),
        ("N8N_TEMPLATES_ENABLED", _bool(n8n.templates_enabled)),
        ("N8N_COMMUNITY_PACKAGES_ENABLED", _bool(n8n.community_packages_enabled)),
        ("N8N_PERSONALIZATION_ENABLED", "false"),
        ("N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS", "true"),
    ]
    if n8n.queue_mode:
        env += [
            ("EXECUTIONS_MODE", "queue"),
            ("QUEUE_BULL_REDIS_HOST", redis.NAME),
            ("QUEUE_BULL_REDIS_PORT", str(redis.PORT)),
            ("QUEUE_BULL_REDIS_PASSWORD", SecretRef("redisPassword")),
            ("QUEUE_HEALTH_CHECK_ACTIVE", "true"),
            ("OFFLOAD_MANUAL_EXECUTIONS_TO_WORKERS", "true"),
        ]
    env += sorted(n8n.extra_env.items())
    return tuple(env)


def build(settings: Settings) -> ServiceSpec:
    """The n8n main process, reachable from outside only through the gateway (or 127.0.0.1 when asked)."""
    n8n = settings.n8n
    url = settings.gateway.url
    ports = (
        (PortBinding(PORT, n8n.host_port, "127.0.0.1", setting="n8n.hostPort"),)
        if n8n.publish is Publish.LOOPBACK
        else ()
    )
    env = (
        *shared_env(settings),
        ("N8N_PORT", str(PORT)),
        ("N8N_LISTEN_ADDRESS", "0.0.0.0"),  # noqa: S104 - inside the container; publishing is loopback-only
        ("N8N_PROTOCOL", url.split("://", 1)[0]),
        ("N8N_HOST", url.split("://", 1)[1].split(":", 1)[0]),
        ("N8N_EDITOR_BASE_URL", f"{url}/"),
        ("WEBHOOK_URL", f"{url}/"),
        ("N8N_PROXY_HOPS", "1"),
        ("N8N_SECURE_COOKIE", _bool(url.startswith("https://"))),
        ("N8N_METRICS", "true"),
    )
    return ServiceSpec(
        name=NAME,
        kind="n8n",
        container_name=container_name(settings, NAME),
        image=settings.images.n8n,
        env=env,
        ports=ports,
        mounts=(VolumeMount(DATA_VOLUME, USER_FOLDER),),
        # Ready = database connected and migrated, and the REST API up (what the seeder talks to first).
        healthcheck=HealthCheck(
            test=node_http_check(READINESS_PATH, REST_SETTINGS_PATH), interval_s=5, retries=36, start_period_s=20
        ),
        restart=settings.restart_policy,
        memory_mb=n8n.memory_mb,
        user="node",
        aliases=(NAME,),
        depends_on=(postgres.NAME, redis.NAME) if n8n.queue_mode else (postgres.NAME,),
        labels=labels(settings, NAME),
    )


def build_workers(settings: Settings) -> list[ServiceSpec]:
    """Queue-mode workers: they execute workflows; the main process only receives triggers and webhooks."""
    n8n = settings.n8n
    workers = []
    for index in range(1, n8n.workers + 1):
        name = f"{NAME}-worker-{index}"
        workers.append(
            ServiceSpec(
                name=name,
                kind="n8n-worker",
                container_name=container_name(settings, name),
                image=settings.images.n8n,
                command=("worker", f"--concurrency={n8n.worker_concurrency}"),
                env=(*shared_env(settings), ("QUEUE_HEALTH_CHECK_PORT", str(PORT))),
                healthcheck=HealthCheck(test=node_http_check(LIVENESS_PATH), interval_s=5, retries=36),
                restart=settings.restart_policy,
                memory_mb=n8n.worker_memory_mb,
                user="node",
                aliases=(name,),
                # After the main process: it runs n8n's own database migrations first.
                depends_on=(NAME, redis.NAME),
                labels=labels(settings, name),
            )
        )
    return workers


def _bool(value: bool) -> str:
    return "true" if value else "false"
