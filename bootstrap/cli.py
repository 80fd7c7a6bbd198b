"""`kaizenity db status | plan | apply | verify`: the schema migrations of an environment's database."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

DATABASE_URL_ENV = "KAIZENITY_DATABASE_URL"


def _database_url(database_url: str | None, stack: str) -> str:
    """Explicit URL, then $KAIZENITY_DATABASE_URL, then the local environment of `stack`."""
    if database_url:
        return database_url
    if os.environ.get(DATABASE_URL_ENV):
        return os.environ[DATABASE_URL_ENV]
    from infra.local_overrides import local_prefix
    from infra.local_state import load_state

    state = load_state(local_prefix(stack))
    if state and state.database_url:
        return state.database_url
    raise click.ClickException(
        f"no database to migrate: no --database-url, no ${DATABASE_URL_ENV}, and no local environment for stack "
        f"'{stack}'. Fix: pass --database-url postgresql://USER:PASSWORD@HOST:PORT/DB, or with Pulumi: "
        f"export {DATABASE_URL_ENV}=$(pulumi stack output --show-secrets databaseUrl)."
    )


def _masked(url: str) -> str:
    from infra.url_masking import mask_password

    return mask_password(url)


MONITORING_PASSWORD_ENV = "KAIZENITY_MONITORING_DATABASE_PASSWORD"  # noqa: S105 - a variable's name


@click.group()
@click.option("--database-url", envvar=DATABASE_URL_ENV, help=f"Target database (env {DATABASE_URL_ENV}).")
@click.option("--stack", "-s", default="dev", show_default=True, help="Local environment to use when no URL is set.")
@click.pass_context
def db(ctx: click.Context, database_url: str | None, stack: str) -> None:
    """Schema migrations (bootstrap/migrations/*.sql) of the platform database."""
    ctx.obj = {"url": lambda: _database_url(database_url, stack)}


def _plan(ctx: click.Context) -> Any:
    from bootstrap.runner import current_plan

    url = ctx.obj["url"]()
    try:
        return url, current_plan(url)
    except Exception as exc:
        raise click.ClickException(f"{_masked(url)}: {exc}") from None


@db.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Applied and pending migrations, and any drift."""
    url, plan = _plan(ctx)
    click.echo(f"database {_masked(url)}")
    for row in plan.applied:
        click.echo(
            f"  applied  {row.version:04d}_{row.name}.sql  {row.applied_at:%Y-%m-%d %H:%M:%S%z}  {row.duration_ms} ms"
        )
    for migration in plan.pending:
        click.echo(f"  pending  {migration.label}")
    for problem in plan.drift:
        click.echo(f"  DRIFT    {problem}")
    click.echo("up to date" if plan.up_to_date else f"{len(plan.pending)} pending, {len(plan.drift)} drift problem(s)")


@db.command()
@click.pass_context
def plan(ctx: click.Context) -> None:
    """Dry run: what `apply` would do, changing nothing."""
    _, result = _plan(ctx)
    if result.drift:
        raise click.ClickException("apply would refuse: " + "; ".join(result.drift))
    if not result.pending:
        click.echo("nothing to apply")
    for migration in result.pending:
        click.echo(
            f"would apply {migration.label} ({'one transaction' if migration.transactional else 'no transaction'})"
        )


@db.command()
@click.option(
    "--monitoring-password-env",
    default=MONITORING_PASSWORD_ENV,
    show_default=True,
    help="Environment variable holding monitoringDatabasePassword: when set, postgres_exporter's login "
    "(kaizenity_monitor) is made or its password set after the migrations, as `pulumi up` does where it migrates.",
)
@click.pass_context
def apply(ctx: click.Context, monitoring_password_env: str) -> None:
    """Apply pending migrations (each in its own transaction, one runner at a time)."""
    import os

    from bootstrap.app_login import MONITORING_USER, ensure_logins
    from bootstrap.runner import MigrationError, apply_migrations

    url = ctx.obj["url"]()
    monitoring_password = os.environ.get(monitoring_password_env)
    try:
        applied = apply_migrations(url, progress=lambda m: click.echo(m, err=True))
        if monitoring_password:
            ensure_logins(url, {MONITORING_USER: monitoring_password})
            click.echo(f"login {MONITORING_USER} ready", err=True)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        raise click.ClickException(f"{_masked(url)}: {exc}") from None
    click.echo(f"applied {len(applied)} migration(s)" if applied else "already up to date")


@db.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Exit 0 when every migration is applied and unchanged, 1 otherwise (for CI and deploy gates)."""
    _, result = _plan(ctx)
    for problem in result.drift:
        click.echo(f"DRIFT: {problem}", err=True)
    for migration in result.pending:
        click.echo(f"pending: {migration.label}", err=True)
    if not result.up_to_date:
        sys.exit(1)
    click.echo(f"verified: {len(result.applied)} migrations applied, checksums match")
