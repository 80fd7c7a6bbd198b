"""The local engine: a stack file brought up on this machine's Docker engine, without Pulumi.

It takes the stack file with the local overrides (`infra.local_overrides`), generates throw-away secrets
(`infra.secret_generation`), checks the host ports (`infra.host_ports`), renders and starts the same environment
model `pulumi up` renders (`infra.container_runner`), applies the schema and seeds the workflows
(`infra.local_seeding`) and records the endpoints (`infra.local_endpoints`, `infra.local_state`). This module is
only that sequence: :func:`start` and :func:`stop`.

Names that used to live here are served from their new modules for a transition (see `_MOVED`): import them
from there.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

from infra.container_runner import ContainerRunner, Progress, remove_environment
from infra.environment import build_environment
from infra.host_ports import check_ports_free
from infra.local_endpoints import LocalEndpoints, endpoints_for
from infra.local_overrides import local_config, local_settings, recordable_config, tls_override_note
from infra.local_seeding import migrate as apply_schema
from infra.local_seeding import seed_workflows
from infra.local_state import remove_state, save_state, state_dir, write_private_file
from infra.secret_generation import generate_secrets, placeholder_secrets
from infra.services import monitoring
from infra.settings_validation import parse_settings
from infra.settings_validation import required_secret_keys as model_secret_keys


def required_secret_keys(stack: str, overrides: Mapping[str, Any] | None = None) -> list[str]:
    """The secrets a stack needs when the local engine runs it, with `overrides` (the local engine generates
    exactly these: e.g. monitoring turned on by an override needs monitoringDatabasePassword)."""
    settings = local_settings(stack, secrets=placeholder_secrets(), overrides=overrides)
    return model_secret_keys(build_environment(settings))


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
) -> tuple[ContainerRunner, LocalEndpoints]:
    """Validate, render and start a stack locally; returns the runner (for `down`) and the endpoints.

    Secrets are generated fresh, except those in `preset_secrets` (disaster recovery brings an environment up
    with the n8n encryption key of the backup it is about to restore).
    """
    secrets = {**generate_secrets(required_secret_keys(stack, overrides)), **(preset_secrets or {})}
    note = tls_override_note(stack)
    if note and progress:
        progress(note)
    # Once: free_ports picks new ports on every call, and the state records exactly this config (rotation's model)
    config = local_config(
        stack, prefix=prefix, offline=offline, free_ports=free_ports, secrets=secrets, overrides=overrides
    )
    settings = parse_settings(stack, config, source=f"stack '{stack}' (local engine)")
    model = build_environment(settings)
    check_ports_free(model)
    runner = ContainerRunner(model, secrets, progress)
    running = runner.up()
    ca_file = None
    if running.ca_certificate:
        ca_path = state_dir() / f"{settings.prefix}-caddy-root.crt"
        write_private_file(ca_path, running.ca_certificate)
        ca_file = str(ca_path)
    endpoints = endpoints_for(model, secrets, ca_file)
    endpoints.settings_config = recordable_config(config)
    if migrate and endpoints.database_url:
        try:
            logins = {user: secrets[key] for user, key in monitoring.database_logins(settings).items()}
            apply_schema(endpoints.database_url, progress, logins)
            if endpoints.n8n_url:
                seed_workflows(endpoints, seed_values or {}, progress)
        except Exception:
            runner.down()
            raise
    if record:
        save_state(endpoints)
    return runner, endpoints


def stop(prefix: str, progress: Progress | None = None) -> dict[str, int]:
    """Remove a local environment by its prefix, and its state and CA files."""
    counts = remove_environment(prefix, progress)
    remove_state(prefix)
    return counts


# Old name -> the module that holds it now (moved out of this module by issue 11).
_MOVED = {
    "LocalEndpoints": "infra.local_endpoints",
    "endpoints_for": "infra.local_endpoints",
    "load_state": "infra.local_state",
    "save_state": "infra.local_state",
    "state_dir": "infra.local_state",
    "local_prefix": "infra.local_overrides",
    "local_settings": "infra.local_overrides",
    "offline_requested": "infra.local_overrides",
    "generate_secrets": "infra.secret_generation",
    "placeholder_secrets": "infra.secret_generation",
    "free_port": "infra.host_ports",
    "check_ports_free": "infra.host_ports",
    "seed_workflows": "infra.local_seeding",
    "seed_values_for": "infra.local_seeding",
    "SEED_VALUES_FROM_ENV": "infra.local_seeding",
    "mask_password": "infra.url_masking",
}


def __getattr__(name: str) -> Any:
    """Serve a moved name from its new module, with a DeprecationWarning naming it (for branches merging in)."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'infra.local_engine' has no attribute '{name}'")
    warnings.warn(f"infra.local_engine.{name} moved to {module}.{name}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), name)
