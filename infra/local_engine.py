"""The local engine: a stack file brought up on this machine's Docker engine, without Pulumi.

It builds settings from `stacks/Pulumi.<stack>.yaml` plus explicit, printed overrides that only make a local run
possible (a unique name prefix, free host ports, offline images, generated throw-away secrets), renders the
same environment model `pulumi up` renders, and starts it with :class:`~infra.local_stack.LocalStack`. The
endpoints (with their secrets) are kept in a private state file so `down`, `status` and the health checks of
another process can find the environment.
"""

from __future__ import annotations

import json
import os
import secrets as secrets_module
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.environment import build_environment
from infra.local_stack import LocalStack, Progress, remove_environment, write_private_file
from infra.model import EnvironmentModel
from infra.services.postgres import dsn
from infra.settings import WORKFLOW_SECRET_KEYS, Publish, Settings, TlsMode, parse_settings, published_host_ports
from infra.settings_problems import SettingsError, SettingsProblem
from infra.stack_files import load_stack_config
from infra.versions import offline_images
from workflows.definitions import values_from_secrets

if TYPE_CHECKING:
    from workflows.seed import SeedReport

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = REPO_ROOT / ".kaizenity" / "local"
SECRET_LENGTHS = {
    "postgresPassword": 32,
    "n8nDbPassword": 32,
    "n8nEncryptionKey": 48,
    "gatewayEditorPassword": 24,
    "redisPassword": 32,
    "n8nOwnerPassword": 24,
    "appDatabasePassword": 32,
    "telegramWebhookSecret": 32,
    "telegramWebhookPathToken": 32,
}


def state_dir() -> Path:
    """Where local environments are recorded (`KAIZENITY_STATE_DIR` or `.kaizenity/local` in the repo)."""
    return Path(os.environ.get("KAIZENITY_STATE_DIR", str(DEFAULT_STATE_DIR)))


def offline_requested() -> bool:
    """`KAIZENITY_OFFLINE_IMAGES=1` switches every stack to the locally built images."""
    return os.environ.get("KAIZENITY_OFFLINE_IMAGES", "").strip().lower() in {"1", "true", "yes"}


@dataclass
class LocalEndpoints:
    """How to reach a local environment. Holds secrets: print :meth:`public` only."""

    stack: str
    prefix: str
    gateway_url: str
    webhook_base_url: str
    n8n_url: str | None
    database_url: str | None
    n8n_database_url: str | None
    editor_user: str
    editor_password: str
    ca_file: str | None
    network: str
    containers: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    n8n_api_key: str | None = None
    credential_fingerprints: dict[str, str] = field(default_factory=dict)

    def stack_secrets(self) -> dict[str, str]:
        """The secrets the stack settings know (`postgresPassword` ...), without the workflow secrets."""
        return {k: v for k, v in self.secrets.items() if k in SECRET_LENGTHS}

    def public(self) -> dict[str, Any]:
        """Everything but the secrets (URLs with passwords are shown with the password masked)."""
        hidden = {"secrets", "editor_password", "n8n_api_key", "credential_fingerprints"}
        view = {k: v for k, v in asdict(self).items() if k not in hidden}
        for key in ("database_url", "n8n_database_url"):
            if view[key]:
                view[key] = mask_password(view[key])
        return view


def generate_secrets(settings_keys: list[str]) -> dict[str, str]:
    """Fresh secrets from the OS CSPRNG, URL-safe so they fit DSNs and env files unquoted.

    The n8n owner password ends in "Kz7": n8n's policy wants a digit and an upper-case letter in it.
    """
    values = {key: secrets_module.token_urlsafe(SECRET_LENGTHS[key])[: SECRET_LENGTHS[key]] for key in settings_keys}
    if "n8nOwnerPassword" in values:
        values["n8nOwnerPassword"] = values["n8nOwnerPassword"][:-3] + "Kz7"
    return values


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_settings(
    stack: str,
    *,
    prefix: str | None = None,
    offline: bool = False,
    free_ports: bool = False,
    secrets: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings of `stack` with the local-run overrides applied, validated like any stack's.

    `overrides` replaces whole top-level sections (e.g. {"backups": {"enabled": True}}) for tests and drills."""
    config: dict[str, Any] = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in load_stack_config(stack).values.items()
    }
    if prefix:
        config["namePrefix"] = prefix
    if offline:
        config["images"] = {**config.get("images", {}), **offline_images()}
    if free_ports:
        config["gateway"] = {**config.get("gateway", {}), "httpPort": free_port(), "httpsPort": free_port()}
        config["postgres"] = {**config.get("postgres", {}), "hostPort": free_port()}
        config["n8n"] = {**config.get("n8n", {}), "hostPort": free_port()}
    config.update(overrides or {})
    config.update(secrets or {})
    settings = parse_settings(stack, config, source=f"stack '{stack}' (local engine)")
    _refuse_public_tls(settings)
    return settings


def _refuse_public_tls(settings: Settings) -> None:
    if settings.gateway.tls_mode is TlsMode.ACME:
        raise SettingsError(
            f"stack '{settings.stack}' (local engine)",
            [
                SettingsProblem(
                    "kaizenity:gateway.tlsMode",
                    "acme needs a public DNS name pointing at this host; the local engine runs on this machine only",
                    "run `kaizenity up --local --stack dev` (or ci), or `pulumi up` on the real host",
                )
            ],
        )


def local_prefix(stack: str) -> str:
    """Name prefix of a stack's local-engine environment (distinct from what `pulumi up` names)."""
    return f"kaizenity-{stack}-local"


def placeholder_secrets() -> dict[str, str]:
    """Valid stand-in secrets, for validating or rendering settings when the real ones do not matter."""
    values = {key: "x" * length for key, length in SECRET_LENGTHS.items()}
    values["n8nOwnerPassword"] = "Placeholder-password-1"
    return values


def required_secret_keys(stack: str) -> list[str]:
    """The secrets a stack's model refers to (the local engine generates exactly these)."""
    model = build_environment(local_settings(stack, secrets=placeholder_secrets()))
    return sorted({key for service in model.services for key in service.secret_keys()} | set(WORKFLOW_SECRET_KEYS))


def check_ports_free(settings: Settings) -> None:
    """Fail before creating anything when a published host port is already taken."""
    problems = []
    for key, address, port in published_host_ports(settings):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError:
                problems.append(
                    SettingsProblem(
                        f"kaizenity:{key}", f"{address}:{port} is already in use on this host", "a free port"
                    )
                )
    if problems:
        raise SettingsError(f"stack '{settings.stack}' (local engine)", problems)


def endpoints_for(
    settings: Settings, model: EnvironmentModel, secrets: Mapping[str, str], ca_file: str | None
) -> LocalEndpoints:
    """The connection details of a local environment, from the model's endpoints."""
    ep = model.endpoints
    db_url = n8n_db_url = None
    if ep.database_host_port is not None:
        port = ep.database_host_port
        db_url = dsn(settings.postgres.superuser, secrets["postgresPassword"], "127.0.0.1", port, ep.database_name)
        n8n_db_url = dsn(settings.n8n.db_user, secrets["n8nDbPassword"], "127.0.0.1", port, ep.n8n_database_name)
    return LocalEndpoints(
        stack=settings.stack,
        prefix=settings.prefix,
        gateway_url=ep.gateway_url,
        webhook_base_url=ep.webhook_base_url,
        n8n_url=ep.n8n_host_url,
        database_url=db_url,
        n8n_database_url=n8n_db_url,
        editor_user=settings.gateway.editor_user,
        editor_password=secrets["gatewayEditorPassword"],
        ca_file=ca_file,
        network=model.network.docker_name,
        containers={service.name: service.container_name for service in model.services},
        secrets=dict(secrets),
    )


def start(
    stack: str,
    *,
    prefix: str | None = None,
    offline: bool = False,
    free_ports: bool = False,
    progress: Progress | None = None,
    record: bool = True,
    preset_secrets: Mapping[str, str] | None = None,
    migrate: bool = True,
    seed_values: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[LocalStack, LocalEndpoints]:
    """Validate, render and start a stack locally; returns the running stack and its endpoints.

    Secrets are generated fresh, except those in `preset_secrets` (disaster recovery brings an environment up
    with the n8n encryption key of the backup it is about to restore).
    """
    secrets = {**generate_secrets(required_secret_keys(stack)), **(preset_secrets or {})}
    settings = local_settings(
        stack, prefix=prefix, offline=offline, free_ports=free_ports, secrets=secrets, overrides=overrides
    )
    check_ports_free(settings)
    model = build_environment(settings)
    stack_runner = LocalStack(model, secrets, progress)
    running = stack_runner.up()
    ca_file = None
    if running.ca_certificate:
        ca_path = state_dir() / f"{settings.prefix}-caddy-root.crt"
        write_private_file(ca_path, running.ca_certificate)
        ca_file = str(ca_path)
    endpoints = endpoints_for(settings, model, secrets, ca_file)
    if migrate and endpoints.database_url:
        try:
            _migrate(endpoints.database_url, progress)
            if endpoints.n8n_url:
                seed_workflows(endpoints, seed_values or {}, progress)
        except Exception:
            stack_runner.down()
            raise
    if record:
        save_state(endpoints)
    return stack_runner, endpoints


def _migrate(database_url: str, progress: Progress | None) -> None:
    """The schema migrations, as `pulumi up` applies them (the same runner)."""
    from bootstrap.runner import apply_migrations

    report = progress or (lambda _message: None)
    applied = apply_migrations(database_url, progress=report)
    report(f"schema: {len(applied)} migration(s) applied" if applied else "schema: up to date")


# Where the seed values of external services come from on a laptop or in CI (the health checks read the same).
SEED_VALUES_FROM_ENV = {
    "TELEGRAM_BOT_TOKEN": "telegramBotToken",
    "TELEGRAM_API_BASE_URL": "telegramApiBaseUrl",
    "CODA_API_BASE_URL": "codaApiBaseUrl",
    "CODA_DOC_ID": "codaDocId",
}


def seed_values_for(endpoints: LocalEndpoints, database_name: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The values `workflows/parameters.yaml` names, for this local environment: the stack's workflow
    parameters and secrets, then the environment (SEED_VALUES_FROM_ENV, KAIZENITY_WORKFLOW_PARAMETERS), then
    `overrides`."""
    parameters = load_stack_config(endpoints.stack).values.get("workflows", {}).get("parameters", {})
    values = values_from_secrets(endpoints.secrets, database_name, parameters)
    values.update({param: os.environ[env] for env, param in SEED_VALUES_FROM_ENV.items() if os.environ.get(env)})
    # KAIZENITY_WORKFLOW_PARAMETERS="heartbeatUnit=seconds,heartbeatEvery=10": any parameter, for a laptop or CI
    for item in os.environ.get("KAIZENITY_WORKFLOW_PARAMETERS", "").split(","):
        if "=" in item:
            name, _, value = item.partition("=")
            values[name.strip()] = value.strip()
    if os.environ.get("CODA_API_TOKEN"):
        values["codaAuthorization"] = f"Bearer {os.environ['CODA_API_TOKEN']}"
    values.update(overrides)
    return values


def seed_workflows(
    endpoints: LocalEndpoints,
    overrides: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    *,
    dry_run: bool = False,
) -> SeedReport:
    """App login role, then the seed workflows; remembers the API key and credential fingerprints in `endpoints`
    (the caller saves them). With `dry_run`, only reports what would change."""
    from bootstrap.app_login import ensure_app_login
    from workflows.deploy import N8nAccess, deploy_workflows

    if not endpoints.n8n_url or not endpoints.database_url:
        raise ValueError(f"environment {endpoints.prefix} publishes no n8n or database port: cannot seed from here")
    values = seed_values_for(endpoints, endpoints.database_url.rsplit("/", 1)[1], overrides or {})
    if not dry_run:
        user = values.get("appDatabaseUser", "kaizenity_n8n")
        ensure_app_login(endpoints.database_url, user, values["appDatabasePassword"])
    access = N8nAccess(endpoints.n8n_url, endpoints.secrets["n8nOwnerPassword"], api_key=endpoints.n8n_api_key)
    report, endpoints.n8n_api_key = deploy_workflows(
        access,
        values,
        known_fingerprints=endpoints.credential_fingerprints,
        dry_run=dry_run,
        progress=progress or (lambda _m: None),
    )
    if not dry_run:
        endpoints.credential_fingerprints = report.credential_fingerprints
    return report


def stop(prefix: str, progress: Progress | None = None) -> dict[str, int]:
    """Remove a local environment by its prefix, and its state and CA files."""
    counts = remove_environment(prefix, progress)
    for path in state_dir().glob(f"{prefix}*"):
        path.unlink(missing_ok=True)
    return counts


def save_state(endpoints: LocalEndpoints) -> Path:
    """Record a running environment (0600: it holds the generated secrets)."""
    path = state_dir() / f"{endpoints.prefix}.json"
    write_private_file(path, json.dumps(asdict(endpoints), indent=2))
    return path


def load_state(prefix: str) -> LocalEndpoints | None:
    """The recorded endpoints of a local environment, or None."""
    path = state_dir() / f"{prefix}.json"
    if not path.is_file():
        return None
    return LocalEndpoints(**json.loads(path.read_text(encoding="utf-8")))


def mask_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


__all__ = ["LocalEndpoints", "Publish", "load_state", "start", "stop"]
