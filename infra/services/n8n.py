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
# What n8n writes outside its data volume (seen with `docker diff` on n8n 2.8.4): the main process renders the
# editor's static files into ~/.cache/n8n/public at start (about 55 MB); data-table uploads are staged in /tmp.
# Workers and webhook processors have no volume: their ~/.n8n holds the settings file, the crash journal and the
# event-bus log (up to keepLogCount+1 files of maxFileSizeInKB: 4 x 10 MB by default), all disposable there
# (queue mode keeps binary data in the database). tmpfs counts against the container's memory limit.
# Docker gives a tmpfs over a directory that exists in the image that directory's mode (~/.n8n: 0755) whatever
# `mode=` says (and an image may ship ~/.cache): so these tmpfs mounts are owned by uid 1000, the `node` user
# of both the official image (Node's Alpine base) and the offline one.
NODE_UID = 1000
MAIN_TMPFS = (
    ("/tmp", "size=64m,mode=1777"),  # noqa: S108 - a container-private tmpfs, not a host path
    ("/home/node/.cache", f"size=128m,uid={NODE_UID},gid={NODE_UID},mode=0700"),
)
QUEUE_PROCESS_TMPFS = (
    ("/tmp", "size=64m,mode=1777"),  # noqa: S108 - a container-private tmpfs, not a host path
    (USER_FOLDER, f"size=64m,uid={NODE_UID},gid={NODE_UID},mode=0700"),
)
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/healthz/readiness"
# Public (no login) and registered with the REST API, after `/healthz/readiness` turns 200: the first request
# the seeder makes (workflows/n8n_api.py). Checking it too makes the health check mean "the editor and its REST
# API answer", which n8n otherwise only logs ("Editor is now accessible via"), and a log line is nothing
# `pulumi-docker` can wait for.
REST_SETTINGS_PATH = "/rest/settings"
WORKER_PREFIX = f"{NAME}-worker-"
WEBHOOK_PREFIX = f"{NAME}-webhook-"
# Docker's SIGKILL comes this long after n8n's own graceful shutdown window ends: time to flush and exit.
STOP_GRACE_MARGIN_S = 15
# How long every n8n process (main, workers, webhook processors) keeps reconnecting to an unreachable Redis before
# it exits. n8n's default, QUEUE_BULL_REDIS_TIMEOUT_THRESHOLD=10000 ms (@n8n/config scaling-mode.config: "max
# cumulative timeout of connection retries before process exit"; dist/services/redis-client.service.js
# retryStrategy: process.exit(1)), is shorter than a Redis restart on a loaded host or a container replacement:
# seen here, a Redis stopped for 14 s took the main and both workers down (exit 1), and with restart policy "no"
# they stayed down; with a policy, the workers' running executions are lost anyway (maxStalledCount 0). Exiting
# fixes nothing: the process reconnects as soon as Redis answers, webhooks meanwhile answer 5xx (Telegram
# redelivers) and the redis/queue probes report the outage at once.
REDIS_RECONNECT_WINDOW_S = 300

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
        # Explicit, so the containers' stop grace (stop_grace_s) can be derived from it and stay longer.
        ("N8N_GRACEFUL_SHUTDOWN_TIMEOUT", str(n8n.graceful_shutdown_s)),
    ]
    if n8n.queue_mode:
        env += [
            ("EXECUTIONS_MODE", "queue"),
            ("QUEUE_BULL_REDIS_HOST", redis.NAME),
            ("QUEUE_BULL_REDIS_PORT", str(redis.PORT)),
            ("QUEUE_BULL_REDIS_PASSWORD", SecretRef("redisPassword")),
            ("QUEUE_BULL_REDIS_TIMEOUT_THRESHOLD", str(REDIS_RECONNECT_WINDOW_S * 1000)),
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
        # n8n_scaling_mode_queue_jobs_{waiting,active,completed,failed} on the main's /metrics (queue mode only).
        *((("N8N_METRICS_INCLUDE_QUEUE_METRICS", "true"),) if n8n.queue_mode else ()),
    )
    return ServiceSpec(
        name=NAME,
        kind="n8n",
        container_name=container_name(settings, NAME),
        image=settings.images.n8n,
        env=env,
        ports=ports,
        mounts=(VolumeMount(DATA_VOLUME, USER_FOLDER),),
        read_only_rootfs=True,
        tmpfs=MAIN_TMPFS,
        # Ready = database connected and migrated, and the REST API up (what the seeder talks to first).
        # timeout 10 s: starting `node` for the check alone took over 5 s on a loaded host (load average 50+).
        healthcheck=HealthCheck(
            test=node_http_check(READINESS_PATH, REST_SETTINGS_PATH),
            interval_s=5,
            timeout_s=10,
            retries=36,
            start_period_s=20,
        ),
        restart=settings.restart_policy,
        memory_mb=n8n.memory_mb,
        user="node",
        aliases=(NAME,),
        depends_on=(postgres.NAME, redis.NAME) if n8n.queue_mode else (postgres.NAME,),
        labels=labels(settings, NAME),
        stop_grace_s=stop_grace_s(settings),
    )


def stop_grace_s(settings: Settings) -> int:
    """Docker's stop timeout for n8n containers: n8n's graceful shutdown plus a margin.

    On SIGTERM a worker stops taking jobs and waits up to N8N_GRACEFUL_SHUTDOWN_TIMEOUT for running executions;
    Docker's default 10 s would SIGKILL it first and, with Bull's maxStalledCount 0 in n8n 2.8.4
    (dist/scaling/scaling.service.js), the executions it held would be lost as "crashed".
    """
    return settings.n8n.graceful_shutdown_s + STOP_GRACE_MARGIN_S


def worker_name(index: int) -> str:
    """Logical name of the index-th worker (1-based): `n8n-worker-1` ..."""
    return f"{WORKER_PREFIX}{index}"


def build_workers(settings: Settings) -> list[ServiceSpec]:
    """Queue-mode workers: they execute workflows; the main process only receives triggers and webhooks.

    Each worker depends on the previous one, so both renderers create (and Pulumi replaces) them one at a time:
    a change of concurrency never takes the whole pool down at once (see infra/scaling.py).
    """
    n8n = settings.n8n
    if not n8n.queue_mode:
        return []
    return [worker_spec(settings, index) for index in range(1, n8n.workers + 1)]


def worker_spec(settings: Settings, index: int) -> ServiceSpec:
    """The index-th worker container (1-based)."""
    n8n = settings.n8n
    name = worker_name(index)
    previous = (worker_name(index - 1),) if index > 1 else ()
    return ServiceSpec(
        name=name,
        kind="n8n-worker",
        container_name=container_name(settings, name),
        image=settings.images.n8n,
        command=("worker", f"--concurrency={n8n.worker_concurrency}"),
        # QUEUE_HEALTH_CHECK_ACTIVE (shared_env) serves /healthz and /healthz/readiness on this port; readiness
        # is database connected and migrated and Redis connected (dist/scaling/worker-server.js).
        # N8N_METRICS adds /metrics on the same port (the worker server's `metrics` endpoint): monitoring's
        # `n8n-worker` scrape job, so a dead or hung worker is seen per worker, not only as the queue's backlog.
        env=(*shared_env(settings), ("QUEUE_HEALTH_CHECK_PORT", str(PORT)), ("N8N_METRICS", "true")),
        read_only_rootfs=True,
        tmpfs=QUEUE_PROCESS_TMPFS,
        healthcheck=HealthCheck(test=node_http_check(READINESS_PATH), interval_s=5, retries=36),
        restart=settings.restart_policy,
        memory_mb=n8n.worker_memory_mb,
        user="node",
        aliases=(name,),
        # After the main process: it runs n8n's own database migrations first. After the previous worker too,
        # although a fresh `up` could safely start them all at once: Pulumi has one ordering, `depends_on`, for
        # creation and replacement alike, and this chain is what makes it replace workers one at a time (a
        # concurrency change must never take the pool down at once; a `dependsOn`-only edge does not make the
        # engine delete worker N+1 early: pkg/resource/deploy/step_generator.go calculateDependentReplacements
        # follows property dependencies only, so N+1 waits for N's replacement). Starting them in parallel only in
        # the local renderer would make it differ from the Pulumi program (tests/unit/test_renderer_parity.py)
        # for a few seconds: each extra worker costs one worker readiness (about 10 s) on a fresh `up`.
        depends_on=(NAME, redis.NAME, *previous),
        labels=labels(settings, name),
        stop_grace_s=stop_grace_s(settings),
    )


def build_webhook_processors(settings: Settings) -> list[ServiceSpec]:
    """Optional `n8n webhook` processes (queue mode): they take production webhook calls off the main process.

    They only enqueue executions (workers run them); the gateway sends /webhook/* to them when any exist.
    """
    n8n = settings.n8n
    if not n8n.queue_mode:
        return []
    specs = []
    for index in range(1, n8n.webhook_processors + 1):
        name = f"{WEBHOOK_PREFIX}{index}"
        specs.append(
            ServiceSpec(
                name=name,
                kind="n8n-webhook",
                container_name=container_name(settings, name),
                image=settings.images.n8n,
                command=("webhook",),
                env=(*shared_env(settings), ("N8N_PORT", str(PORT)), ("N8N_METRICS", "true")),
                read_only_rootfs=True,
                tmpfs=QUEUE_PROCESS_TMPFS,
                healthcheck=HealthCheck(test=node_http_check(READINESS_PATH), interval_s=5, retries=36),
                restart=settings.restart_policy,
                memory_mb=n8n.worker_memory_mb,
                user="node",
                aliases=(name, "n8n-webhook"),
                depends_on=(NAME, redis.NAME),
                labels=labels(settings, name),
                stop_grace_s=stop_grace_s(settings),
            )
        )
    return specs


def _bool(value: bool) -> str:
    return "true" if value else "false"
