"""`kaizenity bootstrap`: the one command a new team runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bootstrap.stack_template import StackChoices

TLS_MODES = ("internal", "acme", "off")


@click.command(name="bootstrap")
@click.option("--stack", "-s", default="dev", show_default=True, help="Stack to create or resume.")
@click.option("--domain", help="Public DNS name of the gateway (asked when the stack file is new).")
@click.option("--tls-mode", type=click.Choice(TLS_MODES), help="internal (local CA), acme (public certificate), off.")
@click.option("--acme-email", help="Contact address for the ACME CA (tls-mode acme).")
@click.option("--yes", "-y", is_flag=True, help="Non-interactive: take flags and defaults, ask nothing.")
@click.option("--local", is_flag=True, help="Use the local engine even when the Pulumi CLI is present.")
def bootstrap(  # noqa: PLR0917 - click passes every option by name
    stack: str, domain: str | None, tls_mode: str | None, acme_email: str | None, yes: bool, local: bool
) -> None:
    """Bring up a healthy environment from nothing: preflight, stack file, secrets, environment, schema,
    workflows, health checks. Safe to re-run: it resumes, or reports that there is nothing to do."""
    from bootstrap.newteam import BootstrapError, run_bootstrap
    from bootstrap.stack_template import StackChoices
    from infra.stack_files import stacks_dir

    started = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)

    choices = StackChoices()
    if not (stacks_dir() / f"Pulumi.{stack}.yaml").exists():
        choices = _choices(domain, tls_mode, acme_email, yes)
    try:
        outcome = run_bootstrap(stack, choices, say=say, use_pulumi=False if local else None)
    except BootstrapError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("")
    if outcome.nothing_to_do:
        click.echo(f"Nothing to do: stack '{stack}' is up, its schema and workflows are current.")
    click.echo(f"Health: {outcome.health_status}.")
    if outcome.state_file:
        click.echo(
            f"Secrets and endpoints: {outcome.state_file} (mode 0600). Show them: kaizenity status --stack {stack}"
        )
    click.echo(
        "Next: back up the n8n encryption key with the data (`kaizenity backup`), open the editor through the "
        f"gateway (user/password: `kaizenity status --stack {stack} --show-secrets`), run `kaizenity health "
        f"--stack {stack}` any time (docs/runbook.md)."
    )
    if outcome.health_status not in {"OK", "WARNING"}:
        raise SystemExit(2)


def _choices(domain: str | None, tls_mode: str | None, acme_email: str | None, yes: bool) -> StackChoices:
    from bootstrap.stack_template import StackChoices

    if not yes:
        domain = domain or click.prompt("Public DNS name of the gateway", default="localhost")
        default_mode = "internal" if domain == "localhost" else "acme"
        tls_mode = tls_mode or click.prompt("TLS mode", type=click.Choice(TLS_MODES), default=default_mode)
        if tls_mode == "acme":
            acme_email = acme_email or click.prompt("E-mail for the certificate authority")
    return StackChoices(domain=domain or "localhost", tls_mode=tls_mode or "internal", acme_email=acme_email)
