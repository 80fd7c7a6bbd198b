"""`kaizenity workflows validate | plan | seed`."""

from __future__ import annotations

from pathlib import Path

import click

from workflows.definitions import DEFINITIONS_DIR


@click.group()
def workflows() -> None:
    """The platform's n8n workflows (workflows/definitions/*.json)."""


@workflows.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--database-url",
    envvar="KAIZENITY_VALIDATE_DATABASE_URL",
    help="PostgreSQL with the migrations applied: every SQL statement of Postgres nodes is prepared there "
    "(env KAIZENITY_VALIDATE_DATABASE_URL). Without it the SQL check is skipped with a message.",
)
@click.option("--n8n-only", is_flag=True, help="Only what n8n itself refuses or fails on; no project conventions.")
def validate(paths: tuple[Path, ...], database_url: str | None, n8n_only: bool) -> None:
    """Check workflow files and directories (default: workflows/definitions); list every problem with its file,
    node and field, n8n validity and project conventions in separate sections. Exit 1 if any."""
    from workflows.validate import validate_paths
    from workflows.validation.problems import Section

    report = validate_paths(paths or (DEFINITIONS_DIR,), database_url=database_url, conventions=not n8n_only)
    for notice in report.notices:
        click.echo(f"note: {notice}", err=True)
    sections = [Section.N8N] if n8n_only else [Section.N8N, Section.CONVENTIONS]
    for section in sections:
        found = report.section(section)
        if found:
            click.echo(f"{section} — {len(found)} problem(s):", err=True)
            click.echo("\n".join(f"  - {p}" for p in found), err=True)
    if report.problems:
        raise SystemExit(1)
    checked = ", ".join(str(s) for s in sections)
    click.echo(
        f"{len(report.definitions)} workflow file(s) valid ({checked}): "
        + ", ".join(d.path.name for d in report.definitions)
    )


def _run(stack: str, dry_run: bool) -> None:
    from infra.local_overrides import local_prefix
    from infra.local_seeding import seed_workflows
    from infra.local_state import load_state, save_state

    prefix = local_prefix(stack)
    endpoints = load_state(prefix)
    if endpoints is None or not endpoints.n8n_url:
        raise click.ClickException(
            f"no local environment {prefix}. Fix: `kaizenity up --local --stack {stack}` (with Pulumi, `pulumi up` "
            "seeds the workflows itself)."
        )
    try:
        report = seed_workflows(
            endpoints, progress=lambda m: click.echo(("would " if dry_run else "") + m, err=True), dry_run=dry_run
        )
    except Exception as exc:
        raise click.ClickException(str(exc)) from None
    save_state(endpoints)
    click.echo("no changes" if not report.changed else f"{'plan' if dry_run else 'done'}: {_summary(report)}")


def _summary(report: object) -> str:
    parts = []
    for key in ("created", "updated", "activated", "deactivated", "deleted", "credentials_written"):
        items = getattr(report, key)
        if items:
            parts.append(f"{key.replace('_', ' ')} {len(items)}")
    return ", ".join(parts)


@workflows.command()
@click.option("--stack", "-s", default="dev", show_default=True)
def plan(stack: str) -> None:
    """What `seed` would change in the stack's local environment (nothing is changed)."""
    _run(stack, dry_run=True)


@workflows.command()
@click.option("--stack", "-s", default="dev", show_default=True)
def seed(stack: str) -> None:
    """Converge the stack's local n8n on the workflows in git (idempotent)."""
    _run(stack, dry_run=False)
