"""``kaizenity health``: run the probes in parallel and say what is broken, how badly, and what to do.

Only click and the standard library are imported at module level: ``kaizenity health --help`` must start in
well under 0.3 s, so httpx, psycopg, yaml and rich load inside the command, when a run actually happens.
Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (worst wins;
unusable settings or arguments are UNKNOWN too, since nothing was checked).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from healthchecks.formats import FORMATS

if TYPE_CHECKING:
    from healthchecks.plan import Plan

PROBE_NAMES = ("database", "n8n", "gateway", "redis", "queue", "coda", "telegram", "slack", "whatsapp")
UNKNOWN_EXIT = 3


@click.command(name="health")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="KAIZENITY_HEALTH_CONFIG",
    help="YAML file with targets and secrets (overrides --stack; environment variables override both).",
)
@click.option(
    "--stack",
    metavar="NAME",
    envvar="KAIZENITY_STACK",
    help="Read targets from this stack: a local environment's prefix, else `pulumi stack output NAME`.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--only", multiple=True, metavar="PROBE", help=f"Run only these ({', '.join(PROBE_NAMES)}).")
@click.option("--skip", multiple=True, metavar="PROBE", help="Do not run these probes.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Override every probe's timeout (seconds).")
@click.option("--watch", type=click.FloatRange(min=1), metavar="SECONDS", help="Re-run every SECONDS until Ctrl-C.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report atomically to this file instead of stdout (textfile collector).",
)
@click.option(
    "--serve",
    metavar="HOST:PORT",
    help="Serve the probes as a Prometheus exporter (/metrics, /probe?target=NAME) instead of running once.",
)
def health(  # noqa: PLR0917 - click passes every option positionally by name
    config_path: Path | None,
    stack: str | None,
    fmt: str,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    timeout: float | None,
    watch: float | None,
    output: Path | None,
    serve: str | None,
) -> None:
    """Run the health probes and report what is wrong and what to do.

    Exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Probes without settings are listed as not
    configured and do not fail the run. See docs/runbook.md for every failure and its fix.
    """
    plan = _plan(config_path, stack, _names(only), _names(skip), timeout)
    if serve:
        _serve(plan, serve)
    color = fmt == "table" and output is None and use_color(sys.stdout, os.environ)
    code = _run_once(plan, fmt, color, output, clear=bool(watch and color))
    while watch:
        try:
            time.sleep(watch)
            code = _run_once(plan, fmt, color, output, clear=color)
        except KeyboardInterrupt:
            break
    raise SystemExit(code)


def _serve(plan: Plan, listen: str) -> None:
    from healthchecks.exporter import serve

    try:
        serve(plan, listen)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass
    raise SystemExit(0)


def use_color(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything non-empty (no-color.org)."""
    return stream.isatty() and not environ.get("NO_COLOR")


def _names(values: tuple[str, ...]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name.split(".")[0] not in PROBE_NAMES]
    if unknown:
        _fail(f"unknown probe(s) {', '.join(unknown)}: choose from {', '.join(PROBE_NAMES)}")
    return names


def _plan(config_path: Path | None, stack: str | None, only: list[str], skip: list[str], timeout: float | None) -> Plan:
    from healthchecks.config import ConfigError, build_plan, load_settings
    from healthchecks.redaction import guard_loggers
    from healthchecks.targets import settings_from_stack

    try:
        stack_settings = settings_from_stack(stack, os.environ) if stack else None
        plan = build_plan(load_settings(config_path, os.environ, stack_settings)).select(only, skip)
    except ConfigError as exc:
        _fail(str(exc))
    guard_loggers(plan.redactor)
    return plan.with_timeout(timeout) if timeout else plan


def _run_once(plan: Plan, fmt: str, color: bool, output: Path | None, clear: bool) -> int:
    from healthchecks.formats import render
    from healthchecks.runner import run

    report = run(plan)
    text = render(report, fmt, plan.redactor, color)
    if output is not None:
        _write_atomically(output, text)
    else:
        click.echo(("\x1b[2J\x1b[H" if clear else "") + text, nl=False)
    return report.exit_code


def _write_atomically(path: Path, text: str) -> None:
    """Write then rename, so a scraper never reads half a file (as prometheus_client.write_to_textfile)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _fail(message: str) -> None:
    click.echo(f"kaizenity health: {message}", err=True)
    raise SystemExit(UNKNOWN_EXIT)
