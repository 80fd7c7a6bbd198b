"""`kaizenity workflows validate | plan | seed`."""

from __future__ import annotations

from pathlib import Path

import click

from workflows.definitions import DEFINITIONS_DIR


@click.group()
def workflows() -> None:
    """The platform's n8n workflows (workflows/definitions/*.json)."""


@workflows.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=DEFINITIONS_DIR)
def validate(directory: Path) -> None:
    """Check every workflow file; list every problem (file, node, field). Exit 1 if any."""
    from workflows.validate import WorkflowValidationError, load_definitions

    try:
        definitions = load_definitions(directory)
    except WorkflowValidationError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    click.echo(f"{len(definitions)} workflow file(s) valid: " + ", ".join(d.path.name for d in definitions))


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
