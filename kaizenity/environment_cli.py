"""`kaizenity up | down | status | config`: bring environments up and down with Pulumi or the local engine.

With the Pulumi CLI on PATH (and no `--local`), `up`/`down` hand over to `pulumi up`/`pulumi destroy` for the
stack: Pulumi owns real environments. Without it, or with `--local`, the local engine starts the same
environment model through testcontainers on this machine's Docker engine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click


def _local_prefix(stack: str) -> str:
    from infra.local_overrides import local_prefix

    return local_prefix(stack)


def _use_local(local: bool) -> bool:
    if local:
        return True
    if shutil.which("pulumi") is None:
        click.echo("No Pulumi CLI on PATH: using the local engine (testcontainers on this Docker engine).", err=True)
        return True
    return False


def _stderr_progress() -> Any:
    started = time.monotonic()

    def report(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)

    return report


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from None


stack_option = click.option(
    "--stack", "-s", default="dev", show_default=True, help="Stack name (stacks/Pulumi.<stack>.yaml)."
)
local_option = click.option("--local", is_flag=True, help="Use the local engine even when the Pulumi CLI is present.")


@click.command()
@stack_option
@local_option
@click.option(
    "--images",
    type=click.Choice(["offline", "stack"]),
    default="offline",
    show_default=True,
    help="Local engine: the locally built kaizenity-local/* images (`make images`), or the stack's own images.",
)
@click.option(
    "--n8n-encryption-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Local engine: use this n8n encryption key (e.g. a backup's n8n-encryption-key) instead of a new one.",
)
@click.option("--yes", "-y", is_flag=True, help="Pulumi: skip the interactive preview confirmation.")
def up(stack: str, local: bool, images: str, n8n_encryption_key_file: Path | None, yes: bool) -> None:
    """Bring up an environment and print its endpoints."""
    if n8n_encryption_key_file and not _use_local(local):
        _fail(
            ValueError(
                "--n8n-encryption-key-file applies to the local engine. With Pulumi, store the key as the stack's "
                f"secret: `pulumi config set --secret kaizenity:n8nEncryptionKey < {n8n_encryption_key_file}`."
            )
        )
    if not _use_local(local):
        sys.exit(_pulumi(["up", "--stack", stack, *(["--yes"] if yes else [])]))
    from infra import local_engine
    from infra.container_runner import ContainerRunnerError
    from infra.docker_engine import containers_running
    from infra.local_state import load_state, state_file
    from infra.settings_problems import SettingsError

    prefix = _local_prefix(stack)
    existing = load_state(prefix)
    if existing and containers_running(existing.containers.values()):
        click.echo(f"Environment {prefix} is already up.", err=True)
        _print_endpoints(existing.public(), stack)
        return
    if existing:
        local_engine.stop(prefix)  # a half-gone environment: start clean
    try:
        preset = {}
        if n8n_encryption_key_file:
            preset["n8nEncryptionKey"] = n8n_encryption_key_file.read_text(encoding="utf-8").strip()
        _, endpoints = local_engine.start(
            stack, prefix=prefix, offline=images == "offline", progress=_stderr_progress(), preset_secrets=preset
        )
    except (SettingsError, ContainerRunnerError) as exc:
        _fail(exc)
    except Exception as exc:  # the Docker engine itself: unreachable, image missing ...
        _fail(_docker_problem(exc))
    _print_endpoints(endpoints.public(), stack)
    click.echo(
        f"Secrets (editor password, database passwords) are in {state_file(prefix)} "
        "(mode 0600). Stop with `kaizenity down --local --stack " + stack + "`.",
        err=True,
    )


@click.command()
@stack_option
@local_option
@click.option("--yes", "-y", is_flag=True, help="Pulumi: skip the interactive confirmation.")
@click.option("--keep-data", is_flag=True, help="Pulumi: keep protected resources (the data volumes).")
def down(stack: str, local: bool, yes: bool, keep_data: bool) -> None:
    """Tear an environment down. The local engine removes its containers, network and volumes."""
    if not _use_local(local):
        sys.exit(_pulumi_destroy(stack, yes, keep_data))
    from infra import local_engine

    try:
        counts = local_engine.stop(_local_prefix(stack), progress=_stderr_progress())
    except Exception as exc:
        _fail(_docker_problem(exc))
    if not any(counts.values()):
        click.echo(f"Nothing to do: no local environment {_local_prefix(stack)} exists.")


@click.command()
@stack_option
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--show-secrets", is_flag=True, help="Also print the generated secrets (editor password ...).")
def status(stack: str, output: str, show_secrets: bool) -> None:
    """Show the endpoints of a local environment and whether its containers run."""
    from infra.docker_engine import containers_running
    from infra.local_state import load_state

    endpoints = load_state(_local_prefix(stack))
    if endpoints is None:
        raise click.ClickException(
            f"no local environment for stack '{stack}' is recorded. "
            f"Start one with `kaizenity up --local --stack {stack}`."
        )
    view = endpoints.public()
    view["running"] = containers_running(endpoints.containers.values())
    if any(name.startswith("n8n-worker-") for name in endpoints.containers):
        from kaizenity.scale_cli import workers_view

        rows = workers_view(endpoints.prefix)
        view["workers"] = {w["name"]: f"{w['state']}/{w['health']} x{w['concurrency']}" for w in rows}
    if show_secrets:
        view["secrets"] = endpoints.secrets
    if output == "json":
        click.echo(json.dumps({**view, "editor": editor_sign_in(endpoints.public(), stack)}, indent=2))
    else:
        _print_endpoints(view, stack)


@click.command()
@stack_option
@click.option("--show-model", is_flag=True, help="Print the rendered environment model (no secret values).")
def config(stack: str, show_model: bool) -> None:
    """Validate a stack file and report every problem at once."""
    from infra.environment import build_environment
    from infra.settings_problems import SettingsError
    from infra.settings_validation import parse_settings
    from infra.stack_files import load_stack_config

    try:
        stack_config = load_stack_config(stack)
        # Encrypted `secure:` values count as set: only Pulumi can decrypt them.
        values = {**stack_config.values, **dict.fromkeys(stack_config.secure_keys, "<encrypted>" * 4)}
        settings = parse_settings(stack, values, source=str(stack_config.path))
    except SettingsError as exc:
        _fail(exc)
    click.echo(f"{stack_config.path}: valid.")
    if show_model:
        model = build_environment(settings)
        for service in model.services:
            ports = ", ".join(f"{p.host_ip}:{p.host_port}->{p.container_port}" for p in service.ports) or "-"
            click.echo(f"  {service.name:<14} {service.image:<34} ports {ports:<40} mem {service.memory_mb} MB")


def editor_sign_in(view: dict[str, Any], stack: str) -> dict[str, str]:
    """How a person opens the n8n editor: the gateway's basic auth first, then n8n's own sign-in."""
    return {
        "url": f"{view['gateway_url']}/",
        "basic_auth_user": str(view["editor_user"]),
        "n8n_sign_in_email": str(view["n8n_owner_email"]),
        "passwords": f"kaizenity status --stack {stack} --show-secrets "
        "(gatewayEditorPassword for basic auth, n8nOwnerPassword for n8n)",
        "ca_certificate": str(view.get("ca_file") or "-"),
    }


def _pulumi(args: list[str]) -> int:
    """`pulumi ARGS` with the passphrase set-up bootstrap uses (bootstrap/pulumi_setup.py `pulumi_env`)."""
    from bootstrap.pulumi_setup import pulumi_env

    return subprocess.call(["pulumi", *args], env=pulumi_env())


def _pulumi_destroy(stack: str, yes: bool, keep_data: bool) -> int:
    from bootstrap.pulumi_setup import destroy_hint
    from infra.stack_files import load_stack_config

    hint = destroy_hint(stack, bool(load_stack_config(stack).values.get("protectVolumes", True)))
    if hint and not keep_data:
        click.echo(hint, err=True)
    code = _pulumi(
        ["destroy", "--stack", stack, *(["--yes"] if yes else []), *(["--exclude-protected"] if keep_data else [])]
    )
    if code and hint and not keep_data:
        click.echo(hint, err=True)
    return code


def _print_endpoints(view: dict[str, Any], stack: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Kaizenity TTA environment {view['prefix']}", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # paths and URLs are copied from here: fold, never truncate with an ellipsis
    for key, value in view.items():
        text = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value
        table.add_row(key, "-" if text is None else str(text))
    console.print(table)
    editor = Table(title="Open the n8n editor", show_header=False)
    editor.add_column(style="bold", no_wrap=True)
    editor.add_column(overflow="fold")
    for key, value in editor_sign_in(view, stack).items():
        editor.add_row(key.replace("_", " "), value)
    console.print(editor)


def _docker_problem(exc: Exception) -> Exception:
    text = str(exc)
    if "Connection aborted" in text or "FileNotFoundError" in text or "Error while fetching server API" in text:
        return RuntimeError(
            "The Docker engine is not reachable (is dockerd running, and is DOCKER_HOST right?). "
            "On Debian, `make setup` installs and starts it (scripts/ensure-docker-engine.sh)."
        )
    if "No such image" in text or "pull access denied" in text or "not found" in text:
        return RuntimeError(
            f"{text}\nFix: build the offline images with `make images`, or use --images stack with a registry."
        )
    return exc
