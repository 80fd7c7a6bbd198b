"""How to reach a local environment: URLs, the editor's sign-in, database URLs, and the secrets behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.environment import loopback_database_url, loopback_n8n_reader_url
from infra.model import EnvironmentModel
from infra.queue_info import redis_host_url
from infra.secrets import SECRET_KEYS
from infra.url_masking import mask_password
from workflows.deploy import OWNER_EMAIL as N8N_OWNER_EMAIL  # the e-mail the seeder creates n8n's owner with

# Keys older state files hold that are no longer kept: the seeder's n8n API key (each seeding now mints a
# short-lived key and deletes it, workflows/deploy.py), dropped when the file is read.
RETIRED_STATE_KEYS = ("n8n_api_key",)
READER_KEY = "n8nReaderDbPassword"


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
    credential_fingerprints: dict[str, str] = field(default_factory=dict)
    n8n_owner_email: str = N8N_OWNER_EMAIL
    redis_url: str | None = None  # queue mode with Redis published on loopback (holds the password)
    # n8n's database as health's read-only login (n8nReaderDbPassword); None in state files written before it.
    n8n_reader_database_url: str | None = None
    # The stack-file keys the environment was validated from when it was started: the stack file with the local
    # overrides and any caller's `overrides` applied (e.g. monitoring turned on by a test), secrets left out.
    # Rotation rebuilds the model from these, not from the stack file (which may differ: overrides, later edits).
    # Empty in state files written before it was recorded.
    settings_config: dict[str, Any] = field(default_factory=dict)

    def stack_secrets(self) -> dict[str, str]:
        """The secrets the stack settings know (`postgresPassword` ...)."""
        return {k: v for k, v in self.secrets.items() if k in SECRET_KEYS}

    def public(self) -> dict[str, Any]:
        """Everything but the secrets (URLs with passwords are shown with the password masked)."""
        hidden = {"secrets", "editor_password", "credential_fingerprints", "settings_config"}
        view = {k: v for k, v in asdict(self).items() if k not in hidden}
        for key in ("database_url", "n8n_database_url", "redis_url", "n8n_reader_database_url"):
            if view[key]:
                view[key] = mask_password(view[key])
        return view


def endpoints_for(model: EnvironmentModel, secrets: Mapping[str, str], ca_file: str | None) -> LocalEndpoints:
    """The connection details of a local environment, from the model's endpoints."""
    ep = model.endpoints
    return LocalEndpoints(
        stack=model.stack,
        prefix=model.prefix,
        gateway_url=ep.gateway_url,
        webhook_base_url=ep.webhook_base_url,
        n8n_url=ep.n8n_host_url,
        database_url=loopback_database_url(model, secrets["postgresPassword"]),
        n8n_database_url=loopback_database_url(model, secrets["n8nDbPassword"], n8n_database=True),
        editor_user=ep.editor_user,
        editor_password=secrets["gatewayEditorPassword"],
        ca_file=ca_file,
        network=model.network.docker_name,
        containers={service.name: service.container_name for service in model.services},
        secrets=dict(secrets),
        redis_url=redis_host_url(model, secrets),
        n8n_reader_database_url=(
            loopback_n8n_reader_url(model, secrets["n8nReaderDbPassword"])
            if secrets.get("n8nReaderDbPassword")
            else None
        ),
    )
