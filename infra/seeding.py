"""The one seeding path: the app login role, then n8n's owner, credentials and workflows, then health's reader.

`pulumi up` (the `SeedWorkflows` dynamic resource), the local engine and `kaizenity workflows seed` all call
:func:`seed_environment`, so an environment is seeded the same way whatever brought it up. No n8n API key is kept:
the seeder mints one for the run and deletes it (workflows/deploy.py).
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
    n8n_database: str | None = None,
    reader_password: str | None = None,
    known_fingerprints: Mapping[str, str] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Seed one environment; returns the report.

    With `n8n_database` and `reader_password`, health's read-only login to n8n's database is made (or its
    password reset) and granted its columns after the seed, when n8n has certainly created its tables.
    With `dry_run`, nothing is changed (not even the login roles): the report says what would change.
    """
    from bootstrap.app_login import ensure_app_login, ensure_n8n_reader
    from workflows.deploy import N8nAccess, deploy_workflows

    report_progress = progress or (lambda _message: None)
    if not dry_run:
        ensure_app_login(database_url, values.get("appDatabaseUser", APP_DATABASE_USER), values["appDatabasePassword"])
    report = deploy_workflows(
        N8nAccess(n8n_url, owner_password),
        values,
        known_fingerprints=known_fingerprints or {},
        dry_run=dry_run,
        progress=report_progress,
    )
    if not dry_run and n8n_database and reader_password:
        ensure_n8n_reader(database_url, n8n_database, reader_password)
        report_progress("n8n: health's read-only login ready")
    return report
