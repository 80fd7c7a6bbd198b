"""The `kaizenity` command.

Subcommands live in the package that owns the concern (``healthchecks.cli``, ``bootstrap.cli`` ...) and are
imported only when invoked, so ``kaizenity --help`` and ``kaizenity health --help`` start fast: an on-call
engineer should not wait for Pulumi or testcontainers to import before seeing a health table.
"""

from __future__ import annotations

import importlib

import click

# name -> ("module:attribute", one-line help shown by `kaizenity --help` without importing the module)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bootstrap": ("bootstrap.newteam_cli:bootstrap", "New team: from nothing to a healthy environment (re-runnable)."),
    "up": ("kaizenity.environment_cli:up", "Bring up an environment (Pulumi when present, else the local engine)."),
    "down": ("kaizenity.environment_cli:down", "Tear down an environment brought up with `up`."),
    "status": ("kaizenity.environment_cli:status", "Show the endpoints of a running environment."),
    "scale": ("kaizenity.scale_cli:scale", "Change queue-mode workers one at a time, without lost work."),
    "config": ("kaizenity.environment_cli:config", "Validate stack settings and show the rendered model."),
    "db": ("bootstrap.cli:db", "Schema migrations: status, plan, apply, verify."),
    "health": ("healthchecks.cli:health", "Run the health probes and report what is wrong and what to do."),
    "workflows": ("workflows.cli:workflows", "Validate, plan and seed the platform's n8n workflows."),
    "rotate": ("kaizenity.rotation_cli:rotate", "Rotate one secret (ALTER ROLE first, then the containers)."),
    "backup": ("backups.cli:backup", "Base backup now (no writer paused); `backup status`: protection and lag."),
    "restore": ("backups.cli:restore", "Point-in-time restore (--to-time T or --latest), checked in a scratch server."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target[0].split(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kaizenity-tta-ops", prog_name="kaizenity")
def main() -> None:
    """Operate Kaizenity TTA environments: bring them up, migrate, check their health."""
