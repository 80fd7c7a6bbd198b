"""`kaizenity rotate SECRET`: rotate one generated secret of an environment without breaking it.

With Pulumi (the default when the CLI is on PATH): the new value is stored with `pulumi config set --secret`
(through stdin, never on a command line) and `pulumi up` applies it; the program orders the in-place change (ALTER
ROLE, n8n owner password) before the containers that carry the secret are replaced (infra/rotation_resource.py).
With `--local`: the same in-place step, then the local engine recreates those containers (infra/rotation_local.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import TextIO

import click


@click.command()
@click.argument("secret")
@click.option("--stack", "-s", default="dev", show_default=True, help="Stack name (stacks/Pulumi.<stack>.yaml).")
@click.option("--local", is_flag=True, help="Rotate in the local-engine environment of the stack.")
@click.option(
    "--prefix",
    default=None,
    help="Local: the environment's name prefix, if not the stack's default (kaizenity-<stack>-local).",
)
@click.option(
    "--value-file",
    type=click.File("r"),
    help="Read the new value from this file ('-' for stdin). Default: a new random value from the OS CSPRNG.",
)
@click.option("--yes", "-y", is_flag=True, help="Pulumi: skip the interactive preview confirmation.")
def rotate(secret: str, stack: str, *, local: bool, prefix: str | None, value_file: TextIO | None, yes: bool) -> None:
    """Rotate SECRET (postgresPassword, n8nDbPassword, appDatabasePassword, monitoringDatabasePassword,
    n8nReaderDbPassword, gatewayEditorPassword, n8nOwnerPassword, redisPassword) and roll the environment onto it;
    nothing stored is lost."""
    from infra.rotation import RotationError, rotation_for
    from infra.secret_generation import generate_secrets

    try:
        rotation_for(secret)
    except RotationError as exc:
        raise click.ClickException(str(exc)) from None
    new = value_file.read().strip() if value_file else generate_secrets([secret])[secret]
    if local or prefix or shutil.which("pulumi") is None:
        _rotate_local(stack, secret, new, prefix)
        return
    from bootstrap.pulumi_setup import pulumi_env

    env = pulumi_env()
    stored = subprocess.run(
        ["pulumi", "config", "set", "--secret", f"kaizenity:{secret}", "--stack", stack],
        input=new,
        text=True,
        env=env,
        check=False,
    )
    if stored.returncode != 0:
        raise click.ClickException(f"`pulumi config set --secret kaizenity:{secret}` failed; nothing was changed.")
    click.echo(f"kaizenity:{secret} set in stack {stack}; `pulumi up` applies it in order.", err=True)
    sys.exit(subprocess.call(["pulumi", "up", "--stack", stack, *(["--yes"] if yes else [])], env=env))


def _rotate_local(stack: str, secret: str, new: str, prefix: str | None) -> None:
    import time

    from infra.rotation import RotationError
    from infra.rotation_local import rotate_local

    started = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)

    try:
        endpoints = rotate_local(stack, secret, new, prefix=prefix, progress=say)
    except RotationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{secret} rotated in {endpoints.prefix}; the new value is in the environment's state file (0600).")
