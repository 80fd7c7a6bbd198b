"""`kaizenity backup [status|key]` and `kaizenity restore --to-time T | --latest`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click


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


def _client() -> Any:
    from infra.docker_engine import docker_client

    return docker_client()


F = TypeVar("F", bound=Callable[..., Any])


def _with_target(func: F) -> F:
    options = [
        click.option("--stack", "-s", default="dev", show_default=True, help="Stack whose environment to use."),
        click.option("--local/--pulumi", "local", default=None, help="The local engine's environment, or Pulumi's."),
        click.option("--prefix", help="The environment's container name prefix, when neither default fits."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(invoke_without_command=True)
@_with_target
@click.pass_context
def backup(ctx: click.Context, stack: str, local: bool | None, prefix: str | None) -> None:
    """Take a verified base backup now (n8n keeps running); `status` and `key` below."""
    ctx.obj = _prefix(stack, local, prefix)
    if ctx.invoked_subcommand is not None:
        return
    from backups.archive import Archive
    from backups.backup import take_backup
    from backups.target import find_target

    try:
        client = _client()
        target = find_target(client, ctx.obj)
        made = take_backup(client, target, Archive.of_environment(client, ctx.obj), progress=_progress)
    except Exception as exc:
        raise _fail(exc) from None
    click.echo(f"base backup {made.stamp} verified (pg_verifybackup); WAL streams continuously")


@backup.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(prefix: str, as_json: bool) -> None:
    """Last base backup, WAL streaming and lag, retention."""
    import json

    from backups.archive import Archive
    from backups.container_db import ContainerDatabase
    from backups.status import read_status
    from backups.target import container_env, find_target

    try:
        client = _client()
        target = find_target(client, prefix)
        archive = Archive.of_environment(client, prefix)
        sidecar_env = container_env(client.containers.get(archive.sidecar)) if archive.sidecar else {}
        live = ContainerDatabase(client, target.postgres_container, target.superuser)
        state = read_status(client, archive, live, sidecar_env)
    except Exception as exc:
        raise _fail(exc) from None
    base, age = state.last_base, state.last_base_age_s()
    view = {
        "archive": archive.volume,
        "last_base_backup": base.stamp if base else None,
        "last_base_backup_age_s": round(age) if age is not None else None,
        "base_backups": [b.stamp for b in state.base_backups],
        "retention": state.retention,
        "interval_s": state.interval_s,
        "wal_streaming": state.streaming,
        "wal_lag_bytes": state.lag_bytes,
        "newest_wal": state.newest_wal,
        "wal_archive_bytes": state.wal_bytes,
        "restorable_from": state.base_backups[0].finished.isoformat() if state.base_backups else None,
    }
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    for key, value in view.items():
        click.echo(f"{key:24} {value}")


@backup.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the key (0600).")
@click.option("--archive", "volume", help="Archive volume, when the environment is gone.")
@click.option("--image", default="postgres:17", show_default=True, help="Image to read the archive with.")
@click.pass_obj
def key(prefix: str, out: Path, volume: str | None, image: str) -> None:
    """Decrypt n8n's encryption key from the archive (for bringing up the environment to restore into)."""
    from backups.archive import Archive
    from backups.pitr import archive_n8n_key
    from infra.local_state import write_private_file

    try:
        client = _client()
        archive = Archive(client, volume, image) if volume else Archive.of_environment(client, prefix)
        write_private_file(out, archive_n8n_key(archive))
    except Exception as exc:
        raise _fail(exc) from None
    click.echo(f"n8n encryption key written to {out} (0600)")


@backup.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Encrypted export file (0600).")
@click.pass_obj
def export(prefix: str, out: Path) -> None:
    """Newest base backup + WAL + keys as one file encrypted with the backup key, to store off the host."""
    from backups.archive import Archive
    from backups.export import export_archive

    try:
        client = _client()
        export_archive(client, Archive.of_environment(client, prefix), out, _progress)
    except Exception as exc:
        raise _fail(exc) from None


@backup.command(name="import")
@click.option("--in", "source", type=click.Path(exists=True, path_type=Path), required=True, help="An export file.")
@click.option("--archive", "volume", required=True, help="Docker volume to unpack it into (created if missing).")
@click.option("--image", default="postgres:17", show_default=True, help="PostgreSQL image for the helper.")
def import_(source: Path, volume: str, image: str) -> None:
    """Decrypt an export into an archive volume, for `kaizenity restore --archive VOLUME`."""
    from backups.export import import_archive

    try:
        import_archive(_client(), source, volume, image, _progress)
    except Exception as exc:
        raise _fail(exc) from None


@click.command()
@_with_target
@click.option("--to-time", "to_time", help="Recover up to this moment (ISO 8601, e.g. 2026-11-29T14:05:00Z).")
@click.option("--latest", is_flag=True, help="Recover as far as the streamed WAL goes.")
@click.option("--from-prefix", help="Restore another environment's archive (default: the target's own).")
@click.option("--archive", "volume", help="Archive volume name (when its environment is gone).")
@click.option("--force", is_flag=True, help="Replace databases that already hold data.")
@click.option("--no-reconcile", is_flag=True, help="Do not re-seed the local environment record afterwards.")
def restore(  # noqa: PLR0917 - one parameter per click option
    stack: str,
    local: bool | None,
    prefix: str | None,
    to_time: str | None,
    latest: bool,
    from_prefix: str | None,
    volume: str | None,
    force: bool,
    no_reconcile: bool,
) -> None:
    """Point-in-time restore: verify the archive, rehearse in a scratch server, then replace the target's data."""
    if bool(to_time) == latest:
        raise click.UsageError("give exactly one of --to-time T or --latest")
    from backups.archive import Archive
    from backups.pitr import restore_point_in_time
    from backups.reconcile import reconcile_local_record
    from backups.target import find_target

    target_prefix = _prefix(stack, local, prefix)
    try:
        when = _parse_time(to_time) if to_time else None
        client = _client()
        target = find_target(client, target_prefix)
        archive = Archive.of_environment(client, from_prefix or target_prefix, volume)
        report = restore_point_in_time(client, archive, target, to_time=when, force=force, progress=_progress)
        if not no_reconcile:
            reconcile_local_record(target_prefix, progress=_progress)
    except Exception as exc:
        raise _fail(exc) from None
    click.echo(
        f"restored base backup {report.base_backup} + WAL to {report.to_time or 'the end of the archive'}: "
        f"{report.tables} tables, {report.rows} rows, {report.credentials} credentials verified "
        f"in {report.seconds:.0f} s"
    )


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
