"""Validated stack settings: the only input of the environment model.

Settings come from `pulumi.Config` (inside `pulumi up`) or from a stack YAML file (the local engine, CI).
Either way they pass through :func:`infra.settings_validation.parse_settings`, which reports *every* problem
at once, each naming the key, what is wrong and a valid example, because a DevOps engineer fixing a stack file
one error per run is the failure this module exists to prevent. Nothing here imports Pulumi.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, create_model, field_validator

from infra.secrets import SECRETS, Rule, SecretSpec
from infra.versions import N8N_VERSION

CONFIG_NAMESPACE = "kaizenity"

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_IMAGE = re.compile(
    r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class TlsMode(StrEnum):
    """How the gateway terminates TLS."""

    INTERNAL = "internal"  # Caddy's own local CA: dev and CI
    ACME = "acme"  # a real domain and a public certificate: production
    OFF = "off"  # plain HTTP behind another load balancer that terminates TLS


class Publish(StrEnum):
    """Whether a backend service port is published on the Docker host."""

    LOOPBACK = "loopback"  # 127.0.0.1 only: reachable from the host, never from the network
    NONE = "none"  # reachable only from the environment's private network


def _check_image(value: str) -> str:
    if not _IMAGE.match(value):
        raise ValueError("is not a valid image reference")
    return value


def _check_hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError("is not a valid DNS name (lower-case letters, digits, dots and dashes)")
    return value


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("is not an IP address or CIDR range") from None
    return value


def _check_bind_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("is not an IP address") from None
    return value


Image = Annotated[str, AfterValidator(_check_image)]
Hostname = Annotated[str, AfterValidator(_check_hostname)]
Cidr = Annotated[str, AfterValidator(_check_cidr)]
BindAddress = Annotated[str, AfterValidator(_check_bind_address)]
Port = Annotated[int, Field(ge=1, le=65535)]


def to_camel(name: str) -> str:
    """snake_case -> camelCase, Pulumi's config style (`n8n_db_password` -> `n8nDbPassword`)."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def to_snake(name: str) -> str:
    """camelCase -> snake_case, the inverse of :func:`to_camel` (`n8nDbPassword` -> `n8n_db_password`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Section(BaseModel):
    """Base of every settings section: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_default=True
    )


class ImageSettings(_Section):
    """Container images. Official images by default; `kaizenity-local/*` for offline hosts and CI."""

    postgres: Image = Field("postgres:17", examples=["postgres:17", "kaizenity-local/postgres:17"])
    n8n: Image = Field(f"n8nio/n8n:{N8N_VERSION}", examples=[f"n8nio/n8n:{N8N_VERSION}"])
    gateway: Image = Field("caddy:2.10", examples=["caddy:2.10", "kaizenity-local/caddy:2"])
    redis: Image = Field("redis:8.0", examples=["redis:8.0", "kaizenity-local/redis:8"])


class PostgresSettings(_Section):
    """The platform database server (one PostgreSQL, two databases: the platform's and n8n's)."""

    database: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$", examples=["kaizenity"])] = "kaizenity"
    superuser: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$", examples=["postgres"])] = "postgres"
    publish: Publish = Field(Publish.LOOPBACK, examples=["loopback", "none"])
    host_port: Port = Field(5432, examples=[5432])
    memory_mb: int = Field(1024, ge=256, le=262144, examples=[1024])
    max_connections: int = Field(200, ge=20, le=10000, examples=[200])


class N8nSettings(_Section):
    """The n8n orchestrator; queue mode adds Redis and worker containers."""

    database: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$", examples=["n8n"])] = "n8n"
    db_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$", examples=["n8n"])] = "n8n"
    publish: Publish = Field(Publish.NONE, examples=["loopback", "none"])
    host_port: Port = Field(5678, examples=[5678])
    memory_mb: int = Field(2048, ge=768, le=262144, examples=[2048])
    timezone: Annotated[str, Field(pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", examples=["Europe/Berlin"])] = "UTC"
    log_level: Literal["error", "warn", "info", "debug"] = Field("info", examples=["info"])
    templates_enabled: bool = Field(False, examples=[False])
    community_packages_enabled: bool = Field(False, examples=[False])
    queue_mode: bool = Field(False, examples=[True])
    workers: int = Field(0, ge=0, le=32, examples=[2])
    worker_concurrency: int = Field(10, ge=1, le=200, examples=[10])
    worker_memory_mb: int = Field(1536, ge=512, le=262144, examples=[1536])
    # n8n's own wait for running executions on SIGTERM (N8N_GRACEFUL_SHUTDOWN_TIMEOUT); containers get longer.
    graceful_shutdown_s: int = Field(30, ge=5, le=3600, examples=[30])
    webhook_processors: int = Field(0, ge=0, le=16, examples=[2])  # `n8n webhook` containers (queue mode)
    extra_env: dict[Annotated[str, Field(pattern=_ENV_NAME.pattern)], str] = Field(
        default_factory=dict, examples=[{"N8N_PAYLOAD_SIZE_MAX": "32"}]
    )


class RedisSettings(_Section):
    """The queue-mode broker (only created when `n8n.queueMode` is true)."""

    memory_mb: int = Field(256, ge=64, le=65536, examples=[256])
    publish: Publish = Field(Publish.NONE, examples=["loopback", "none"])  # loopback: for probes from the host
    host_port: Port = Field(6379, examples=[6379])


class BackupSettings(_Section):
    """Continuous protection: the backup sidecar (infra/services/backup.py) streams WAL and takes base backups."""

    enabled: bool = Field(False, examples=[True])  # stacks opt in (staging, prod): see stacks/*.yaml
    interval_minutes: int = Field(1440, ge=5, le=10080, examples=[1440, 360])  # base backup schedule
    retention: int = Field(7, ge=1, le=365, examples=[7])  # base backups kept (with the WAL they need)
    checkpoint: Literal["spread", "fast"] = Field("spread", examples=["spread"])  # spread: no I/O burst
    max_rate: Annotated[str, Field(pattern=r"^$|^[0-9]+[kM]?$", examples=["", "50M"])] = ""  # pg_basebackup
    archive_volume: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", examples=["kz-archive"])] = (
        None  # Docker volume name of the archive; default <prefix>-backup-archive
    )
    memory_mb: int = Field(256, ge=64, le=65536, examples=[256])
    # WAL the server keeps for a stopped sidecar (max_slot_wal_keep_size): beyond it the slot is invalidated
    # rather than the data volume filled; the archive then has a gap until the next base backup.
    max_slot_wal_keep_mb: int = Field(10240, ge=1024, le=10485760, examples=[10240])


class GatewaySettings(_Section):
    """The Caddy gateway: the only service listening beyond loopback by default."""

    domain: Hostname = Field("localhost", examples=["ops.example.com", "localhost"])
    tls_mode: TlsMode = Field(TlsMode.INTERNAL, examples=["internal", "acme", "off"])
    acme_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["ops@example.com"])
    bind_address: BindAddress = Field("127.0.0.1", examples=["127.0.0.1", "0.0.0.0"])  # noqa: S104
    http_port: Port = Field(80, examples=[80, 8080])
    https_port: Port = Field(443, examples=[443, 8443])
    editor_user: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$", examples=["admin"])] = "admin"
    editor_allowed_cidrs: list[Cidr] = Field(default_factory=list, examples=[["10.0.0.0/8", "192.0.2.7/32"]])
    body_limit_mb: int = Field(16, ge=1, le=1024, examples=[16])
    memory_mb: int = Field(256, ge=64, le=65536, examples=[256])
    public_url: str | None = Field(
        None, pattern=r"^https?://[^/\s]+$", examples=["https://ops.example.com"]
    )  # only where another load balancer in front changes the URL people and Telegram use

    @property
    def url(self) -> str:
        """The public base URL: what browsers, Telegram and n8n's WEBHOOK_URL use."""
        if self.public_url:
            return self.public_url
        if self.tls_mode is TlsMode.OFF:
            return f"http://{self.domain}" + ("" if self.http_port == 80 else f":{self.http_port}")
        return f"https://{self.domain}" + ("" if self.https_port == 443 else f":{self.https_port}")


class _SecretValues(_Section):
    """Secrets: set with `pulumi config set --secret KEY VALUE`; never in plain stack files.

    The fields are generated from the registry (`infra.secrets.SECRETS`): one optional `SecretStr` per entry,
    with its length limits, example and value rule (`_RULES`).
    """

    def reveal(self, key: str) -> str | None:
        """The plaintext of the secret with this config key (`postgresPassword`), for renderers only."""
        for name, field in type(self).model_fields.items():
            if key in (name, field.alias):
                secret: SecretStr | None = getattr(self, name)
                return secret.get_secret_value() if secret is not None else None
        raise KeyError(f"unknown secret key {key}")


def _n8n_password_policy(value: SecretStr | None) -> SecretStr | None:
    """n8n refuses owner passwords without a digit and an upper-case letter: fail here, not mid-deploy."""
    text = value.get_secret_value() if value is not None else ""
    if value is not None and not (any(c.isdigit() for c in text) and any(c.isupper() for c in text)):
        raise ValueError("must contain a digit and an upper-case letter (n8n's password policy)")
    return value


def _url_safe(value: SecretStr | None) -> SecretStr | None:
    """Telegram allows only A-Z a-z 0-9 _ - in the secret token; the path token goes into a URL."""
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", value.get_secret_value()):
        raise ValueError("may contain only letters, digits, '_' and '-'")
    return value


_RULES = {Rule.N8N_PASSWORD: _n8n_password_policy, Rule.URL_SAFE: _url_safe}


def _secret_field(spec: SecretSpec) -> Any:
    return (
        SecretStr | None,
        Field(
            None,
            alias=spec.key,
            min_length=spec.min_length,
            max_length=spec.max_length,
            examples=[spec.example],
        ),
    )


if TYPE_CHECKING:
    SecretSettings = _SecretValues
else:
    SecretSettings = create_model(
        "SecretSettings",
        __base__=_SecretValues,
        __validators__={
            f"_check_{to_snake(spec.key)}": field_validator(to_snake(spec.key))(_RULES[spec.rule])
            for spec in SECRETS
            if spec.rule in _RULES
        },
        **{to_snake(spec.key): _secret_field(spec) for spec in SECRETS},
    )


class WorkflowSettings(_Section):
    """The seed workflows: non-secret parameter values (workflows/parameters.yaml) and what removal does."""

    parameters: dict[str, str] = Field(
        default_factory=dict, examples=[{"telegramApiBaseUrl": "https://api.telegram.org", "codaDocId": "AbCDeFGH"}]
    )
    removed: Literal["deactivate", "delete"] = Field("deactivate", examples=["deactivate"])


class Settings(_Section):
    """Everything an environment is built from. `stack` is the Pulumi stack name, not a config key."""

    stack: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", examples=["dev", "staging", "prod", "ci"])]
    name_prefix: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9-]{0,40}$", examples=["kaizenity-dev"])] = None
    restart_policy: Literal["no", "on-failure", "always", "unless-stopped"] = Field(
        "unless-stopped", examples=["unless-stopped"]
    )
    protect_volumes: bool = Field(True, examples=[True])  # `pulumi destroy` must not delete a database
    images: ImageSettings = Field(default_factory=ImageSettings)  # type: ignore[arg-type]
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)  # type: ignore[arg-type]
    n8n: N8nSettings = Field(default_factory=N8nSettings)  # type: ignore[arg-type]
    redis: RedisSettings = Field(default_factory=RedisSettings)  # type: ignore[arg-type]
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)  # type: ignore[arg-type]
    workflows: WorkflowSettings = Field(default_factory=WorkflowSettings)  # type: ignore[arg-type]
    backups: BackupSettings = Field(default_factory=BackupSettings)  # type: ignore[arg-type]
    secrets: SecretSettings = Field(default_factory=SecretSettings)

    @property
    def prefix(self) -> str:
        """Prefix of every Docker object name of this environment."""
        return self.name_prefix or f"kaizenity-{self.stack}"
