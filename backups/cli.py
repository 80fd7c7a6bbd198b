"""`kaizenity backup` and `kaizenity restore`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

DEFAULT_ROOT = Path(os.environ.get("KAIZENITY_BACKUP_DIR", ".kaizenity/backups"))


def _progress(message: str, started: float = time.monotonic()) -> None:
    click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)


def _prefix(stack: str, local: bool | None, prefix: str | None) -> str:
    """The environment's name prefix: explicit, the local engine's, or the stack's (as `pulumi up` names it)."""
    if prefix:
        return prefix
    from infra.local_overrides import local_prefix as prefix_of
    from infra.local_state import load_state
    from infra.secret_generation import placeholder_secrets

    local_prefix = prefix_of(stack)
    if local or (local is None and load_state(local_prefix) is not None):
        return local_prefix
    from infra.settings_validation import parse_settings
    from infra.stack_files import load_stack_config

    values = {**load_stack_config(stack).values, **placeholder_secrets()}  # only the name matters here
    return parse_settings(stack, values, source=f"stack '{stack}'").prefix


def _target(stack: str, local: bool | None, prefix: str | None) -> tuple[Any, Any]:
    """The Docker client and the environment's data containers."""
    from backups.target import find_target
    from infra.docker_engine import docker_client

    client = docker_client()
    return client, find_target(client, _prefix(stack, local, prefix))


target_options = [
    click.option("--stack", "-s", default="dev", show_default=True, help="Stack whose environment to use."),
    click.option("--local/--pulumi", "local", default=None, help="The local engine's environment, or Pulumi's."),
    click.option("--prefix", help="The environment's container name prefix, when neither default fits."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _with_target(func: F) -> F:
    for option in reversed(target_options):
        func = option(func)
    return func


@click.command()
@_with_target
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path),
    default=DEFAULT_ROOT,
    show_default=True,
    help="Backup root; backups go to ROOT/<prefix>/<UTC time>/ (env KAIZENITY_BACKUP_DIR).",
)
@click.option("--keep", default=7, show_default=True, type=click.IntRange(min=1), help="Backups to retain.")
def backup(stack: str, local: bool | None, prefix: str | None, root: Path, keep: int) -> None:
    """Dump both databases and n8n's encryption key into a checksummed backup directory."""
    from backups.backup import create_backup

    try:
        client, target = _target(stack, local, prefix)
        path = create_backup(client, target, root, retention=keep, progress=_progress)
    except Exception as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(path))


@click.command()
@_with_target
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace databases that already hold data.")
def restore(stack: str, local: bool | None, prefix: str | None, directory: Path, force: bool) -> None:
    """Restore a backup directory into an environment, verifying it before and after."""
    from backups.restore import restore_backup

    try:
        client, target = _target(stack, local, prefix)
        report = restore_backup(client, target, directory, force=force, progress=_progress)
    except Exception as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {report.tables} tables ({report.rows} rows), verified against the backup")
