"""Schema and seed workflows for a local environment, through the same runner and seeder `pulumi up` uses."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from infra.local_endpoints import LocalEndpoints
from infra.secret_generation import generate_secrets
from infra.seeding import seed_environment
from infra.stack_files import load_stack_config
from workflows.definitions import values_from_secrets

if TYPE_CHECKING:
    from workflows.seed import SeedReport

Progress = Callable[[str], None]
READER_SECRET = "n8nReaderDbPassword"  # noqa: S105 - a secret's name in the registry

# Where the seed values of external services come from on a laptop or in CI (the health checks read the same).
SEED_VALUES_FROM_ENV = {
    "TELEGRAM_BOT_TOKEN": "telegramBotToken",
    "TELEGRAM_API_BASE_URL": "telegramApiBaseUrl",
    "CODA_API_BASE_URL": "codaApiBaseUrl",
    "CODA_DOC_ID": "codaDocId",
}


def migrate(database_url: str, progress: Progress | None, logins: Mapping[str, str] | None = None) -> None:
    """The schema migrations, as `pulumi up` applies them (the same runner), then the per-environment logins
    (user -> password) in the group roles the migrations made (bootstrap/app_login.py LOGIN_GROUPS)."""
    from bootstrap.app_login import ensure_logins
    from bootstrap.runner import apply_migrations

    report = progress or (lambda _message: None)
    applied = apply_migrations(database_url, progress=report)
    report(f"schema: {len(applied)} migration(s) applied" if applied else "schema: up to date")
    if logins:
        ensure_logins(database_url, logins)
        report(f"schema: login(s) {', '.join(logins)} ready")


def seed_values_for(endpoints: LocalEndpoints, database_name: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The values `workflows/parameters.yaml` names, for this local environment: the stack's workflow
    parameters and secrets, then the environment (SEED_VALUES_FROM_ENV, KAIZENITY_WORKFLOW_PARAMETERS), then
    `overrides`."""
    parameters = load_stack_config(endpoints.stack).values.get("workflows", {}).get("parameters", {})
    secrets = dict(endpoints.secrets)
    if os.environ.get("CODA_API_TOKEN"):
        secrets["codaApiToken"] = os.environ["CODA_API_TOKEN"]
    values = values_from_secrets(secrets, database_name, parameters)
    values.update({param: os.environ[env] for env, param in SEED_VALUES_FROM_ENV.items() if os.environ.get(env)})
    # KAIZENITY_WORKFLOW_PARAMETERS="heartbeatUnit=seconds,heartbeatEvery=10": any parameter, for a laptop or CI
    for item in os.environ.get("KAIZENITY_WORKFLOW_PARAMETERS", "").split(","):
        if "=" in item:
            name, _, value = item.partition("=")
            values[name.strip()] = value.strip()
    values.update(overrides)
    return values


def seed_workflows(
    endpoints: LocalEndpoints,
    overrides: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    *,
    dry_run: bool = False,
) -> SeedReport:
    """App login role, the seed workflows, then health's read-only login; remembers the credential fingerprints and
    the reader's URL in `endpoints` (the caller saves them). With `dry_run`, only reports what would change."""
    if not endpoints.n8n_url or not endpoints.database_url:
        raise ValueError(f"environment {endpoints.prefix} publishes no n8n or database port: cannot seed from here")
    values = seed_values_for(endpoints, endpoints.database_url.rsplit("/", 1)[1], overrides or {})
    reader_password = endpoints.secrets.get(READER_SECRET)
    if not dry_run and reader_password is None and endpoints.n8n_database_url:
        # An environment started before health had its own login: generate its secret now (saved by the caller).
        reader_password = endpoints.secrets[READER_SECRET] = generate_secrets([READER_SECRET])[READER_SECRET]
    n8n_database = urlsplit(endpoints.n8n_database_url).path.lstrip("/") if endpoints.n8n_database_url else None
    report = seed_environment(
        n8n_url=endpoints.n8n_url,
        database_url=endpoints.database_url,
        owner_password=endpoints.secrets["n8nOwnerPassword"],
        values=values,
        n8n_database=n8n_database,
        reader_password=reader_password,
        known_fingerprints=endpoints.credential_fingerprints,
        dry_run=dry_run,
        progress=progress,
    )
    if not dry_run:
        endpoints.credential_fingerprints = report.credential_fingerprints
        if endpoints.n8n_database_url and reader_password:
            endpoints.n8n_reader_database_url = reader_url(endpoints.n8n_database_url, reader_password)
    return report


def reader_url(n8n_database_url: str, password: str) -> str:
    """n8n's database URL (host, port, database) as health's read-only login."""
    from bootstrap.app_login import N8N_READER_USER
    from infra.services.postgres import dsn

    parts = urlsplit(n8n_database_url)
    return dsn(N8N_READER_USER, password, parts.hostname or "127.0.0.1", parts.port or 5432, parts.path.lstrip("/"))
