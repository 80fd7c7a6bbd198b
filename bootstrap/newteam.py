"""`kaizenity bootstrap --stack NAME`: from a clean machine to a healthy environment, safely re-runnable.

Steps: preflight (everything checked, everything reported, nothing created on failure) → stack file from a
template when missing → secrets generated where missing (never overwritten) → the environment (Pulumi, or the
local engine without it), schema migrations and seed workflows → health checks → what was created and what next.
A second run finds the environment up, re-applies migrations and seeding (idempotent) and reports nothing to do.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap import preflight
from bootstrap.stack_template import StackChoices, stack_config, write_stack_file

Say = Callable[[str], None]
HEALTH_WAIT_S = 150.0  # a freshly seeded n8n writes its first heartbeat within one interval (default 60 s)


class BootstrapError(RuntimeError):
    """The bootstrap stopped; the message says why and what to do. Nothing half-created is left behind."""


@dataclass
class Outcome:
    """What a bootstrap run did."""

    created_stack_file: bool = False
    started: bool = False
    migrations_applied: list[str] = field(default_factory=list)
    workflows_changed: bool = False
    health_status: str = "UNKNOWN"
    state_file: Path | None = None

    @property
    def nothing_to_do(self) -> bool:
        return not (self.created_stack_file or self.started or self.migrations_applied or self.workflows_changed)


def run_bootstrap(stack: str, choices: StackChoices, *, say: Say, use_pulumi: bool | None = None) -> Outcome:
    """Bootstrap `stack`; raise :class:`BootstrapError` (after reporting) if it cannot be done."""
    from infra import local_engine
    from infra.local_overrides import local_prefix
    from infra.local_state import state_file
    from infra.stack_files import stacks_dir

    outcome = Outcome()
    stack_path = stacks_dir() / f"Pulumi.{stack}.yaml"
    pulumi = shutil.which("pulumi") is not None if use_pulumi is None else use_pulumi
    prefix = local_prefix(stack)
    running = not pulumi and _local_running(prefix)
    config = None if stack_path.exists() else stack_config(choices)
    _preflight(stack, config, pulumi, running, say)
    if config is not None:
        write_stack_file(stack_path, stack, choices)
        outcome.created_stack_file = True
        say(f"created {stack_path} (domain {choices.domain}, TLS {choices.tls_mode})")
    if pulumi:
        _pulumi_up(stack, say)
        outcome.started = True
    elif running:
        _refresh_local(prefix, outcome, say)
    else:
        say("starting the environment with the local engine (PostgreSQL, n8n, gateway; migrations; workflows)")
        _, _endpoints = local_engine.start(stack, prefix=prefix, offline=True, progress=say)
        outcome.started = True
        outcome.state_file = state_file(prefix)
        say(f"environment {prefix} is up")
    outcome.health_status = _health(stack, say)
    return outcome


def _local_running(prefix: str) -> bool:
    from infra.docker_engine import containers_running
    from infra.local_state import load_state

    state = load_state(prefix)
    return state is not None and containers_running(state.containers.values())


def _preflight(stack: str, config: dict[str, Any] | None, pulumi: bool, running: bool, say: Say) -> None:
    from infra.environment import build_environment
    from infra.versions import offline_images

    checks = [preflight.python_version(), preflight.docker_engine(), preflight.pulumi_cli()]
    docker_ok = checks[1].ok
    checks.append(preflight.disk_space(Path.cwd(), "/var/lib/docker"))
    if docker_ok and not pulumi:
        checks.append(preflight.images_available(list(offline_images().values())))
    if not running:
        try:
            settings = _settings_for_ports(stack, config)
            checks.append(preflight.ports_free(build_environment(settings)))
        except Exception as exc:
            checks.append(preflight.PreflightCheck("settings", False, str(exc), f"fix stacks/Pulumi.{stack}.yaml"))
    ok, text = preflight.report(checks)
    say("preflight:\n" + text)
    if not ok:
        raise BootstrapError(f"preflight failed for stack '{stack}'; nothing was created. Fix the items marked FAIL.")


def _settings_for_ports(stack: str, config: dict[str, Any] | None) -> Any:
    """The settings whose ports will be published (from the template when the stack file does not exist yet)."""
    from infra.local_overrides import local_settings
    from infra.secret_generation import placeholder_secrets

    if config is None:
        return local_settings(stack, secrets=placeholder_secrets())
    from infra.settings_validation import parse_settings

    raw = {key.removeprefix("kaizenity:"): value for key, value in config.items()}
    return parse_settings(stack, {**raw, **placeholder_secrets()}, source=f"stack '{stack}' (template)")


def _refresh_local(prefix: str, outcome: Outcome, say: Say) -> None:
    """The environment is up: converge schema and workflows (both idempotent) and report what changed."""
    from bootstrap.runner import apply_migrations
    from infra.local_seeding import seed_workflows
    from infra.local_state import load_state, save_state

    endpoints = load_state(prefix)
    assert endpoints is not None
    assert endpoints.database_url
    say(f"environment {prefix} is already up")
    outcome.migrations_applied = [m.label for m in apply_migrations(endpoints.database_url)]
    outcome.workflows_changed = seed_workflows(endpoints).changed
    outcome.state_file = save_state(endpoints)
    say(f"schema: {len(outcome.migrations_applied)} migration(s) applied; workflows: "
        + ("changed" if outcome.workflows_changed else "unchanged"))  # fmt: skip


def _pulumi_up(stack: str, say: Say) -> None:
    """Pulumi with a local file backend (no Pulumi Cloud account needed) and generated secrets."""
    from bootstrap import pulumi_setup

    pulumi_setup.ensure_backend(say)
    pulumi_setup.ensure_stack(stack, say)
    pulumi_setup.ensure_secrets(stack, say)
    say(f"pulumi up --stack {stack} (containers, migrations, seed workflows)")
    pulumi_setup.run(["up", "--yes", "--stack", stack], say)


def _health(stack: str, say: Say) -> str:
    """Run the health checks until nothing is CRITICAL/UNKNOWN (a new n8n has not beaten yet) or time runs out."""
    from healthchecks.config import build_plan
    from healthchecks.formats import render
    from healthchecks.result import Status
    from healthchecks.runner import run
    from healthchecks.targets import settings_from_stack

    deadline = time.monotonic() + float(os.environ.get("KAIZENITY_BOOTSTRAP_HEALTH_WAIT", HEALTH_WAIT_S))
    plan = build_plan(settings_from_stack(stack)).select(["database", "n8n", "gateway"], [])
    while True:
        report = run(plan)
        if report.status in {Status.OK, Status.WARNING} or time.monotonic() > deadline:
            break
        say("health: waiting for n8n's first heartbeat and readiness ...")
        time.sleep(5)
    say(render(report, "table", plan.redactor, color=False).rstrip())
    return report.status.name
