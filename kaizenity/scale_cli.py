"""`kaizenity scale`: change a running queue-mode environment's workers, one at a time, without downtime.

The logic is in :mod:`infra.scaling`; this module only parses options, reports, and records the new pool in the
local state file (its containers and its recorded settings, so `kaizenity status`, `kaizenity health --stack` and
`kaizenity rotate --local` know which workers there are and how many must be live).
With Pulumi, change `kaizenity:n8n.workers` / `workerConcurrency` in the stack file and run `pulumi up`: the
model makes pulumi-docker replace the workers one after the other (see infra/scaling.py).
"""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.option("--stack", "-s", default="dev", show_default=True, help="Stack name (stacks/Pulumi.<stack>.yaml).")
@click.option("--local", is_flag=True, help="The local engine's environment (the only one scaled from here).")
@click.option("--prefix", default=None, help="Environment prefix (default: the stack's local environment).")
@click.option("--workers", type=click.IntRange(1, 32), default=None, help="Number of workers wanted.")
@click.option("--concurrency", type=click.IntRange(1, 200), default=None, help="Jobs each worker runs at once.")
def scale(stack: str, local: bool, prefix: str | None, workers: int | None, concurrency: int | None) -> None:
    """Scale n8n's queue-mode workers: replaced one at a time, each stopped gracefully (no lost work)."""
    from infra.local_overrides import local_prefix
    from infra.local_state import load_state, save_state
    from infra.scaling import scale_local

    if not local:
        raise click.ClickException(
            "With Pulumi: set kaizenity:n8n.workers / workerConcurrency in the stack file and run `pulumi up` "
            "(workers are replaced one at a time). For the local engine add --local."
        )
    if workers is None and concurrency is None:
        raise click.ClickException("nothing to change: pass --workers N and/or --concurrency C")
    prefix = prefix or local_prefix(stack)
    endpoints = load_state(prefix)
    if endpoints is None:
        raise click.ClickException(
            f"no local environment {prefix}: start it with `kaizenity up --local --stack {stack}`"
        )
    recorded = endpoints.settings_config or None
    report, model = scale_local(
        stack,
        prefix,
        endpoints.stack_secrets(),
        workers=workers,
        concurrency=concurrency,
        recorded=recorded,
        progress=_progress,
    )
    endpoints.containers = {service.name: service.container_name for service in model.services}
    if recorded:  # a rotation rebuilds the environment from this record: it must know the new pool
        endpoints.settings_config = report.config
    save_state(endpoints)
    if report.plan.empty:
        click.echo("workers already as asked: nothing changed")
    for name, seconds in report.stop_seconds.items():
        click.echo(f"{name}: stopped gracefully in {seconds} s (exit {report.exit_codes[name]})")
    click.echo(
        f"replaced {list(report.plan.replace)}, added {list(report.plan.add)}, removed {list(report.plan.remove)}"
    )


def _progress(message: str) -> None:
    click.echo(message, err=True)


def workers_view(prefix: str) -> list[dict[str, Any]]:
    """The worker containers of an environment: name, state, health, concurrency (for `kaizenity status`)."""
    from infra.scaling import running_workers

    rows = []
    for name, container in sorted(running_workers(prefix).items()):
        command = container.attrs["Config"].get("Cmd") or []
        concurrency = next((part.split("=", 1)[1] for part in command if part.startswith("--concurrency=")), "?")
        health = (container.attrs["State"].get("Health") or {}).get("Status", "-")
        rows.append({"name": name, "state": container.status, "health": health, "concurrency": concurrency})
    return rows
