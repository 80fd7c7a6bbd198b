"""The environment model: every container property of a Kaizenity TTA environment, written once.

Two renderers turn this model into running containers: the Pulumi program (`infra.pulumi_program`, for
`pulumi up`) and the local renderer (`infra.container_spec`, whose create specs `infra.container_runner` starts
for CI and laptops). Neither adds a container property of its own, so what CI runs for real is what `pulumi up`
would create: tests/unit/test_renderer_parity.py compares the two for every stack file. Plain typed Python: no Pulumi,
no Docker imports, trivially unit-testable.

Secrets never enter the model as values. An environment variable holds a :class:`SecretRef` naming the
settings key; each renderer resolves it in its own way (a Pulumi secret Output, or the local secret
store), so a model can be printed, diffed and logged safely.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class SecretTransform(StrEnum):
    """How a secret's value becomes the string a container receives."""

    PLAIN = "plain"
    CADDY_BCRYPT = "caddy_bcrypt"  # base64(bcrypt(value)), what Caddy's basicauth expects
    N8N_ROUTE = "n8n_route"  # the one-way internal webhook path n8n registers for a public path token


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret setting (e.g. ``postgresPassword``), resolved only by a renderer."""

    key: str
    transform: SecretTransform = SecretTransform.PLAIN
    salt_key: str | None = None  # CADDY_BCRYPT: the secret that seeds the hash's salt (random, stored with the rest)


EnvValue = str | SecretRef


@dataclass(frozen=True)
class PortBinding:
    """A container port published on the Docker host (never implicitly on 0.0.0.0)."""

    container_port: int
    host_port: int
    host_ip: str = "127.0.0.1"
    protocol: str = "tcp"
    # The stack setting the host port comes from (`gateway.httpsPort`), for problem messages only: not a
    # container property, so renderers ignore it.
    setting: str = ""


@dataclass(frozen=True)
class VolumeMount:
    """A named volume (by its logical name in :attr:`EnvironmentModel.volumes`) mounted into a service."""

    volume: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class FileUpload:
    """A file whose content the model renders (Caddyfile, init scripts) placed into the container."""

    target: str
    content: str
    executable: bool = False


@dataclass(frozen=True)
class HealthCheck:
    """A Docker health check. Dependents start only once it passes."""

    test: tuple[str, ...]
    interval_s: int = 5
    timeout_s: int = 5
    retries: int = 12
    start_period_s: int = 10


@dataclass(frozen=True)
class ServiceSpec:
    """One container of the environment, complete: a renderer needs nothing else to create it."""

    name: str  # logical name, also the network alias other services use: "postgres", "n8n" ...
    kind: str  # which component renders it: "postgres", "n8n", "n8n-worker", "gateway", "redis"
    container_name: str
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None  # replaces the image's (monitoring: one image, several binaries)
    env: tuple[tuple[str, EnvValue], ...] = ()
    ports: tuple[PortBinding, ...] = ()
    mounts: tuple[VolumeMount, ...] = ()
    uploads: tuple[FileUpload, ...] = ()
    # The one definition of "ready": Pulumi waits for it (`wait=True`), the local engine polls it. There is no
    # second signal (such as a log line) because `pulumi-docker` could not wait for one.
    healthcheck: HealthCheck | None = None
    restart: str = "unless-stopped"
    memory_mb: int = 512
    user: str | None = None
    aliases: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    security_opts: tuple[str, ...] = ("no-new-privileges:true",)
    labels: tuple[tuple[str, str], ...] = ()
    stop_grace_s: int = 30
    # A read-only root filesystem: writes go only to `mounts` and `tmpfs`. Docker refuses to copy an upload into
    # a read-only root, so a service with uploads needs their targets inside a volume mount.
    read_only_rootfs: bool = False
    tmpfs: tuple[tuple[str, str], ...] = ()  # (container path, mount options such as "size=16m,mode=1777")
    # json-file log rotation: an unbounded container log fills the host's disk eventually.
    log_options: tuple[tuple[str, str], ...] = (("max-size", "10m"), ("max-file", "5"))

    def env_dict(self) -> dict[str, EnvValue]:
        """The environment as a mapping (for lookups in tests and probes)."""
        return dict(self.env)

    def ready_timeout_s(self) -> int:
        """How long a renderer waits for this service to turn healthy: its health check's own worst case."""
        check = self.healthcheck
        if check is None:
            return 60
        return check.start_period_s + check.retries * (check.interval_s + check.timeout_s) + 30

    def secret_keys(self) -> set[str]:
        """Settings keys of the secrets this service receives."""
        refs = [value for _, value in self.env if isinstance(value, SecretRef)]
        return {ref.key for ref in refs} | {ref.salt_key for ref in refs if ref.salt_key}


@dataclass(frozen=True)
class VolumeSpec:
    """A named Docker volume. Its data outlives containers: it is what backups protect."""

    name: str  # logical name
    docker_name: str


@dataclass(frozen=True)
class NetworkSpec:
    """The environment's private bridge network; services find each other by their aliases on it."""

    docker_name: str
    internal: bool = False  # n8n needs egress to Telegram, Coda ...: not an internal-only network


@dataclass(frozen=True)
class Endpoints:
    """What the environment exposes, for stack outputs, health checks and bootstrap."""

    gateway_url: str
    webhook_base_url: str
    n8n_internal_url: str
    n8n_host_url: str | None
    database_host: str
    database_port: int
    database_name: str
    database_host_port: int | None  # published on 127.0.0.1, or None
    n8n_database_name: str
    database_superuser: str
    n8n_database_user: str
    editor_user: str  # the gateway's basic-auth user (its password is the gatewayEditorPassword secret)
    # Where the gateway keeps the root certificate of its own CA (`tls internal`), inside its container; None
    # when the certificate comes from a public CA (acme) or there is no TLS (off).
    local_ca_file: str | None = None


@dataclass(frozen=True)
class EnvironmentModel:
    """A whole environment: network, volumes, services in dependency order, and its endpoints."""

    stack: str
    prefix: str
    network: NetworkSpec
    volumes: tuple[VolumeSpec, ...]
    services: tuple[ServiceSpec, ...]
    endpoints: Endpoints
    labels: tuple[tuple[str, str], ...] = field(default=())
    protect_volumes: bool = True

    def published_ports(self) -> list[tuple[ServiceSpec, PortBinding]]:
        """Every port the environment publishes on the Docker host, with the service publishing it."""
        return [(service, port) for service in self.services for port in service.ports]

    def secret_keys(self) -> set[str]:
        """Settings keys of every secret a container of this environment receives."""
        return {key for service in self.services for key in service.secret_keys()}

    def service(self, name: str) -> ServiceSpec:
        """The service with this logical name (KeyError names the known ones)."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service '{name}' in this environment (have: {[s.name for s in self.services]})")

    def volume(self, name: str) -> VolumeSpec:
        """The volume with this logical name."""
        for volume in self.volumes:
            if volume.name == name:
                return volume
        raise KeyError(f"no volume '{name}' in this environment")

    def start_order(self) -> list[list[ServiceSpec]]:
        """Services in waves: each wave depends only on earlier ones, so a wave can start in parallel."""
        done: set[str] = set()
        waves: list[list[ServiceSpec]] = []
        pending = list(self.services)
        while pending:
            wave = [s for s in pending if set(s.depends_on) <= done]
            if not wave:
                raise ValueError(f"dependency cycle among {[s.name for s in pending]}")
            waves.append(wave)
            done |= {s.name for s in wave}
            pending = [s for s in pending if s.name not in done]
        return waves


def resolve_secret(ref: SecretRef, value: str, salt: str | None = None) -> str:
    """Turn a secret's raw value into what the container receives. Deterministic given the secrets, so that
    re-rendering does not change the container's inputs (which would make `pulumi up` replace it)."""
    if ref.transform is SecretTransform.PLAIN:
        return value
    if ref.transform is SecretTransform.N8N_ROUTE:
        return internal_route_token(value)
    if not salt:
        raise ValueError(f"secret {ref.key}: a bcrypt hash needs its salt secret {ref.salt_key or '(none named)'}")
    return caddy_bcrypt(value, salt)


def internal_route_token(public_token: str) -> str:
    """The path segment n8n registers for a public webhook path token: a one-way function of it.

    The gateway checks the public token and rewrites to this one, so the public token never reaches n8n (n8n
    logs the path of every failed webhook request and stores the route in its database). Knowing this value
    only helps someone who can already reach n8n without the gateway.
    """
    return hashlib.sha256(b"kaizenity-n8n-route:" + public_token.encode()).hexdigest()[:32]


def caddy_bcrypt(password: str, salt_secret: str, cost: int = 12) -> str:
    """base64(bcrypt(password)), its 16-byte salt taken from `salt_secret`, a random secret of its own.

    A salt made fresh at each render would change the hash, and so replace the gateway container, on every
    `pulumi up`; a salt derived from the password (the former scheme) let a guess be checked against a leaked
    hash without a per-environment unknown. The salt secret is generated with the other secrets and rotated
    with the password (docs/security.md).
    """
    import bcrypt  # lazy: only renderers need it

    digest = hashlib.sha256(b"kaizenity-gateway-bcrypt-salt:" + salt_secret.encode()).digest()[:16]
    alphabet = str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    )
    salt_chars = base64.b64encode(digest).decode().rstrip("=").translate(alphabet)[:22]
    salt = f"$2a${cost:02d}${salt_chars}".encode()
    hashed = bcrypt.hashpw(password.encode(), salt)
    return base64.b64encode(hashed).decode()
