"""The one seeding path: the app login role, then n8n's owner, API key, credentials and workflows.

`pulumi up` (the `SeedWorkflows` dynamic resource), the local engine and `kaizenity workflows seed` all call
:func:`seed_environment`, so an environment is seeded the same way whatever brought it up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.seed import SeedReport

APP_DATABASE_USER = "kaizenity_n8n"  # the login role the workflows use (bootstrap/app_login.py)


def seed_environment(
    *,
    n8n_url: str,
    database_url: str,
    owner_password: str,
    values: Mapping[str, str],
    api_key: str | None = None,
    known_fingerprints: Mapping[str, str] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[SeedReport, str]:
    """Seed one environment; returns the report and the n8n API key to keep for the next run.

    With `dry_run`, nothing is changed (not even the login role): the report says what would change.
    """
    from bootstrap.app_login import ensure_app_login
    from workflows.deploy import N8nAccess, deploy_workflows

    if not dry_run:
        ensure_app_login(database_url, values.get("appDatabaseUser", APP_DATABASE_USER), values["appDatabasePassword"])
    access = N8nAccess(n8n_url, owner_password, api_key=api_key)
    return deploy_workflows(
        access,
        values,
        known_fingerprints=known_fingerprints or {},
        dry_run=dry_run,
        progress=progress or (lambda _message: None),
    )
