"""Monitoring: Prometheus, Alertmanager and the exporters, each a ServiceSpec both renderers create.

Only when `monitoring.enabled` (on in staging and prod). Prometheus scrapes n8n's own `/metrics`
(N8N_METRICS=true), `kaizenity health --serve` (the same probes on-call runs by hand, healthchecks/exporter.py),
postgres_exporter (with the error workflow's table as a custom query), redis_exporter (queue mode) and
node_exporter, which sees every Docker volume of the environment mounted read-only under /volumes, so
`node_filesystem_avail_bytes` is the free space of the filesystems holding them. Alert rules: monitoring/rules.

Every binary is started by the path of its official image's entrypoint (`/bin/prometheus`, `/redis_exporter`
...); the offline image (images/monitoring) symlinks Debian's binaries to the same paths, so one model runs on
both. Memory: `monitoring.memoryMb` is split among the containers (FIXED_MEMORY_MB), Prometheus' TSDB is bounded by time
(`retention`) and size (`retentionSizeMb`), Alertmanager keeps 120 h of silences and notification log.
"""

from __future__ import annotations

from bootstrap.app_login import MONITORING_USER, N8N_READER_USER
from infra.model import EnvValue, FileUpload, HealthCheck, PortBinding, SecretRef, ServiceSpec, VolumeMount
from infra.project_files import monitoring_dir
from infra.services import gateway, n8n, postgres, redis
from infra.services.common import container_name, labels
from infra.services.monitoring_config import alertmanager_config, health_probe_timeout_s, prometheus_config
from infra.settings import Publish, Settings

MONITORING_DIR = monitoring_dir()
# Flat files in /etc: every image (official busybox-based ones too) has it, and the local runner puts an upload into
# its existing directory (a new directory would need a writable root the runner does not assume).
CONFIG_DIR = "/etc"
PROMETHEUS, ALERTMANAGER = "prometheus", "alertmanager"
POSTGRES_EXPORTER, REDIS_EXPORTER, NODE_EXPORTER, HEALTH_EXPORTER = (
    "postgres-exporter",
    "redis-exporter",
    "node-exporter",
    "health-exporter",
)
PORTS = {
    PROMETHEUS: 9090,
    ALERTMANAGER: 9093,
    POSTGRES_EXPORTER: 9187,
    REDIS_EXPORTER: 9121,
    NODE_EXPORTER: 9100,
    HEALTH_EXPORTER: 9840,
}
JOB_NAMES = {HEALTH_EXPORTER: "health", POSTGRES_EXPORTER: "postgres", REDIS_EXPORTER: "redis", NODE_EXPORTER: "node"}
PROMETHEUS_VOLUME, ALERTMANAGER_VOLUME = "prometheus-data", "alertmanager-data"
# monitoring.memoryMb split: each exporter and Alertmanager get 64 MB (Go exporters use 15-30 MB), the health
# exporter (Python, httpx, psycopg) 96 MB, Prometheus (series in memory, query buffers) everything else.
FIXED_MEMORY_MB = {ALERTMANAGER: 64, POSTGRES_EXPORTER: 64, REDIS_EXPORTER: 64, NODE_EXPORTER: 64, HEALTH_EXPORTER: 96}
# postgres_exporter's login (MONITORING_USER), in the group role kaizenity_monitoring (migration 0013).
MONITORING_PASSWORD_KEY = "monitoringDatabasePassword"  # noqa: S105 - a secret's name in the registry
BOT_TOKEN_FILE = "/tmp/telegram-bot-token"  # noqa: S105, S108 - a path, written by the container at start (umask 077)


def build(settings: Settings, platform: list[ServiceSpec]) -> list[ServiceSpec]:
    """The monitoring services for this environment (none unless monitoring.enabled)."""
    if not settings.monitoring.enabled:
        return []
    services = [
        _postgres_exporter(settings),
        _node_exporter(settings, platform),
        _health_exporter(settings),
    ]
    if settings.n8n.queue_mode:
        services.append(_redis_exporter(settings))
    services += [_alertmanager(settings), _prometheus(settings, [s.name for s in services])]
    return services


def memory_mb(settings: Settings, name: str) -> int:
    """This container's share of monitoring.memoryMb; the shares of one environment add up to it exactly."""
    if name != PROMETHEUS:
        return FIXED_MEMORY_MB[name]
    others = [n for n in FIXED_MEMORY_MB if n != REDIS_EXPORTER or settings.n8n.queue_mode]
    return settings.monitoring.memory_mb - sum(FIXED_MEMORY_MB[n] for n in others)


def _spec(settings: Settings, name: str, image: str, **fields: object) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        kind=name,
        container_name=container_name(settings, name),
        image=image,
        restart=settings.restart_policy,
        memory_mb=memory_mb(settings, name),
        aliases=(name,),
        labels=labels(settings, name),
        **fields,  # type: ignore[arg-type]
    )


def _version_check(binary: str) -> HealthCheck:
    """The binary runs (no shell or HTTP client in some official exporter images, e.g. redis_exporter's scratch
    image): readiness of an exporter is Prometheus' `up`, watched by the rules."""
    return HealthCheck(test=("CMD", binary, "--version"), interval_s=30, retries=3, start_period_s=2)


def _prometheus(settings: Settings, targets: list[str]) -> ServiceSpec:
    monitoring = settings.monitoring
    rules = sorted((MONITORING_DIR / "rules").glob("*.yml"))
    flags = (
        f"--config.file={CONFIG_DIR}/kaizenity-prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        f"--storage.tsdb.retention.time={monitoring.retention}",
        f"--storage.tsdb.retention.size={monitoring.retention_size_mb}MB",
        f"--web.listen-address=:{PORTS[PROMETHEUS]}",
    )
    return _spec(
        settings,
        PROMETHEUS,
        monitoring.images.prometheus,
        entrypoint=("/bin/prometheus",),
        command=flags,
        uploads=(
            FileUpload(
                f"{CONFIG_DIR}/kaizenity-prometheus.yml",
                prometheus_config(settings, _scrape_targets(settings, targets)),
            ),
            *(
                FileUpload(f"{CONFIG_DIR}/kaizenity-rules-{path.name}", path.read_text(encoding="utf-8"))
                for path in rules
            ),
        ),
        mounts=(VolumeMount(PROMETHEUS_VOLUME, "/prometheus"),),
        ports=_published(settings, PROMETHEUS, monitoring.prometheus_host_port),
        healthcheck=HealthCheck(
            test=("CMD", "promtool", "check", "healthy", f"--url=http://127.0.0.1:{PORTS[PROMETHEUS]}"),
            interval_s=10,
            retries=12,
            start_period_s=5,
        ),
        user="nobody",
        depends_on=(ALERTMANAGER, *targets),
    )


def _scrape_targets(settings: Settings, exporters: list[str]) -> dict[str, tuple[str, ...]]:
    """Scrape job name -> host:port targets (all on /metrics): n8n and, in queue mode, its workers and webhook
    processors (N8N_METRICS=true on each: n8n's own process metrics and, on the main, the queue's), the gateway
    (Caddy's `metrics` handler on its internal listener: gateway.METRICS_PATH), the exporters, Alertmanager and
    Prometheus itself."""
    jobs: dict[str, tuple[str, ...]] = {
        "prometheus": (f"localhost:{PORTS[PROMETHEUS]}",),
        "alertmanager": (f"{ALERTMANAGER}:{PORTS[ALERTMANAGER]}",),
        "n8n": (f"{n8n.NAME}:{n8n.PORT}",),
        "gateway": (f"{gateway.NAME}:{gateway.HEALTH_PORT}",),
    }
    workers = tuple(f"{spec.name}:{n8n.PORT}" for spec in n8n.build_workers(settings))
    webhooks = tuple(f"{spec.name}:{n8n.PORT}" for spec in n8n.build_webhook_processors(settings))
    jobs |= {name: targets for name, targets in (("n8n-worker", workers), ("n8n-webhook", webhooks)) if targets}
    return jobs | {JOB_NAMES[name]: (f"{name}:{PORTS[name]}",) for name in exporters}


def _alertmanager(settings: Settings) -> ServiceSpec:
    monitoring = settings.monitoring
    env: tuple[tuple[str, EnvValue], ...] = ()
    start = "exec /bin/alertmanager " + " ".join(
        (
            f"--config.file={CONFIG_DIR}/kaizenity-alertmanager.yml",
            "--storage.path=/alertmanager",
            "--data.retention=120h",
            "--cluster.listen-address=",  # one instance: no gossip port
            f"--web.listen-address=:{PORTS[ALERTMANAGER]}",
        )
    )
    if monitoring.telegram_chat_id:
        # Alertmanager reads the token from a file (bot_token_file): written here from the environment, so the
        # token is never part of the rendered configuration or the model.
        start = f'umask 077 && printf %s "$TELEGRAM_BOT_TOKEN" > {BOT_TOKEN_FILE} && {start}'
        env = (("TELEGRAM_BOT_TOKEN", SecretRef("monitoringTelegramBotToken")),)
    template = (MONITORING_DIR / "telegram-message.tmpl").read_text(encoding="utf-8")
    return _spec(
        settings,
        ALERTMANAGER,
        monitoring.images.alertmanager,
        entrypoint=("/bin/sh", "-c", start),
        env=env,
        uploads=(
            FileUpload(
                f"{CONFIG_DIR}/kaizenity-alertmanager.yml", alertmanager_config(settings, template, BOT_TOKEN_FILE)
            ),
        ),
        mounts=(VolumeMount(ALERTMANAGER_VOLUME, "/alertmanager"),),
        ports=_published(settings, ALERTMANAGER, monitoring.alertmanager_host_port),
        healthcheck=HealthCheck(
            test=("CMD", "amtool", "config", "show", f"--alertmanager.url=http://127.0.0.1:{PORTS[ALERTMANAGER]}"),
            interval_s=10,
            retries=12,
            start_period_s=3,
        ),
        user="nobody",
    )


def database_logins(settings: Settings) -> dict[str, str]:
    """Login role -> the secret holding its password, for the logins monitoring needs in the platform database
    (made after the migrations by both engines: bootstrap/app_login.py `ensure_logins`); none without monitoring."""
    return {MONITORING_USER: MONITORING_PASSWORD_KEY} if settings.monitoring.enabled else {}


def _postgres_exporter(settings: Settings) -> ServiceSpec:
    pg = settings.postgres
    return _spec(
        settings,
        POSTGRES_EXPORTER,
        settings.monitoring.images.postgres_exporter,
        entrypoint=("/bin/postgres_exporter",),
        command=(
            f"--extend.query-path={CONFIG_DIR}/kaizenity-postgres-queries.yml",
            f"--web.listen-address=:{PORTS[POSTGRES_EXPORTER]}",
        ),
        # Its own least-privilege login (pg_monitor + the custom query's table, migration 0013), made after the
        # migrations (database_logins): until then the exporter answers pg_up 0, inside PostgresDown's `for`.
        env=(
            ("DATA_SOURCE_URI", f"{postgres.NAME}:{postgres.PORT}/{pg.database}?sslmode=disable"),
            ("DATA_SOURCE_USER", MONITORING_USER),
            ("DATA_SOURCE_PASS", SecretRef(MONITORING_PASSWORD_KEY)),
        ),
        uploads=(
            FileUpload(
                f"{CONFIG_DIR}/kaizenity-postgres-queries.yml",
                (MONITORING_DIR / "postgres-queries.yml").read_text(encoding="utf-8"),
            ),
        ),
        healthcheck=_version_check("/bin/postgres_exporter"),
        user="nobody",
        depends_on=(postgres.NAME,),
    )


def _redis_exporter(settings: Settings) -> ServiceSpec:
    return _spec(
        settings,
        REDIS_EXPORTER,
        settings.monitoring.images.redis_exporter,
        entrypoint=("/redis_exporter",),
        env=(
            ("REDIS_ADDR", f"redis://{redis.NAME}:{redis.PORT}"),
            ("REDIS_PASSWORD", SecretRef("redisPassword")),
            ("REDIS_EXPORTER_WEB_LISTEN_ADDRESS", f":{PORTS[REDIS_EXPORTER]}"),
        ),
        healthcheck=_version_check("/redis_exporter"),
        user="nobody",
        depends_on=(redis.NAME,),
    )


def _node_exporter(settings: Settings, platform: list[ServiceSpec]) -> ServiceSpec:
    volumes = sorted({mount.volume for service in platform for mount in service.mounts})
    return _spec(
        settings,
        NODE_EXPORTER,
        settings.monitoring.images.node_exporter,
        entrypoint=("/bin/node_exporter",),
        command=(
            f"--web.listen-address=:{PORTS[NODE_EXPORTER]}",
            # The volumes and the container root (the Docker data filesystem); not the kernel's pseudo mounts.
            "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|etc)($|/)",
        ),
        mounts=tuple(VolumeMount(volume, f"/volumes/{volume}", read_only=True) for volume in volumes),
        healthcheck=_version_check("/bin/node_exporter"),
        user="nobody",
    )


def _health_exporter(settings: Settings) -> ServiceSpec:
    pg = settings.postgres
    # Monitoring's read-only login (migration 0013), as postgres_exporter: every database probe reads statistics,
    # the migration history, heartbeats and backup records, nothing the superuser is needed for.
    env: list[tuple[str, EnvValue]] = [
        ("KAIZENITY_DATABASE_URL", f"postgresql://{MONITORING_USER}@{postgres.NAME}:{postgres.PORT}/{pg.database}"),
        ("PGPASSWORD", SecretRef(MONITORING_PASSWORD_KEY)),  # libpq's own variable: the DSN carries no password
        ("KAIZENITY_N8N_URL", f"http://{n8n.NAME}:{n8n.PORT}"),
        ("KAIZENITY_HEALTH_TIMEOUT", f"{health_probe_timeout_s(settings):g}"),
    ]
    if settings.secrets.reveal("telegramBotToken") is not None:  # presence only: the value stays a SecretRef
        env.append(("TELEGRAM_BOT_TOKEN", SecretRef("telegramBotToken")))
    if settings.secrets.reveal("codaApiToken") is not None:
        env.append(("CODA_API_TOKEN", SecretRef("codaApiToken")))
    for key, variable in (("telegramApiBaseUrl", "TELEGRAM_API_BASE_URL"), ("codaDocId", "CODA_DOC_ID")):
        if key in settings.workflows.parameters:
            env.append((variable, settings.workflows.parameters[key]))
    if settings.backups.enabled:  # issue 15's probe: base backup age, WAL archive lag (alerts BackupTooOld ...)
        env.append(("KAIZENITY_BACKUPS_DATABASE_URL", env[0][1]))
    port = PORTS[HEALTH_EXPORTER]
    serve = f"exec python3 -m healthchecks --serve :{port}"
    # n8n's seed workflows and failed executions (FailedExecutionsHigh), read from n8n's database as the read-only
    # login the seeder grants (issue 14: no API key). The URL carries the password: built here from the
    # environment, never written into the model (n8nReaderDbPassword is URL-safe by rule).
    env.append(("N8N_READER_PASSWORD", SecretRef("n8nReaderDbPassword")))
    reader = (
        f"postgresql://{N8N_READER_USER}:$N8N_READER_PASSWORD@{postgres.NAME}:{postgres.PORT}/{settings.n8n.database}"
    )
    serve = f'KAIZENITY_N8N_READER_DATABASE_URL="{reader}" {serve}'
    if settings.n8n.queue_mode:  # issue 12's redis and queue probes (QueueWorkersDead, QueueBacklogGrowing)
        # redis:// URLs carry the password: built here from the environment, never written into the model.
        env += [
            ("REDIS_PASSWORD", SecretRef("redisPassword")),
            ("KAIZENITY_QUEUE_EXPECTED_WORKERS", str(settings.n8n.workers)),
        ]
        serve = f'KAIZENITY_REDIS_URL="redis://:$REDIS_PASSWORD@{redis.NAME}:{redis.PORT}/0" {serve}'
    http_check = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=3)"
    return _spec(
        settings,
        HEALTH_EXPORTER,
        settings.monitoring.images.health_exporter,
        entrypoint=("sh", "-c", serve),
        env=tuple(env),
        healthcheck=HealthCheck(test=("CMD", "python3", "-c", http_check), interval_s=10, retries=12, start_period_s=3),
        user="nobody",
        depends_on=(postgres.NAME,),
    )


def _published(settings: Settings, name: str, host_port: int) -> tuple[PortBinding, ...]:
    if settings.monitoring.publish is Publish.LOOPBACK:
        return (PortBinding(PORTS[name], host_port, setting=f"monitoring.{name}HostPort"),)
    return ()
