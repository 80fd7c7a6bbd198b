"""The human view: one row per probe, worst first, then what to do, then what was not checked.

Colour only when writing to a terminal and NO_COLOR is unset; the caller decides (rich would otherwise
judge the in-memory buffer we render into).
"""

from __future__ import annotations

import io
import shutil

from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthchecks.formats.nagios import perf_item
from healthchecks.report import Report
from healthchecks.result import ProbeResult, Status

STYLES = {Status.OK: "green", Status.WARNING: "yellow", Status.CRITICAL: "bold red", Status.UNKNOWN: "magenta"}


def render_table(report: Report, color: bool | None) -> str:
    """Render to text; ``color`` None or False gives plain text."""
    buffer = io.StringIO()
    width = max(100, shutil.get_terminal_size((120, 40)).columns) if color else 160
    console = Console(file=buffer, force_terminal=bool(color), no_color=not color, width=width, highlight=False)
    ordered = sorted(report.results, key=lambda result: -result.status.severity)
    if ordered:
        console.print(_summary_table(ordered))
    else:
        console.print(Text("No probe ran: nothing is configured (see below) or everything was skipped.", "bold"))
    _print_fixes(console, ordered)
    _print_skipped(console, report)
    overall = report.status
    console.print(
        Text(f"Overall: {overall.name} (exit {report.exit_code}) in {report.duration_seconds:.2f} s", STYLES[overall])
    )
    return buffer.getvalue()


def _summary_table(results: list[ProbeResult]) -> Table:
    table = Table(show_lines=False, expand=False)
    table.add_column("Status", no_wrap=True)
    table.add_column("Probe", no_wrap=True)
    table.add_column("What we found")
    table.add_column("Values")
    table.add_column("Time", justify="right", no_wrap=True)
    for result in results:
        values = ", ".join(perf_item(m.name, m).split(";")[0].replace("'", "") for m in result.measurements)
        table.add_row(
            Text(result.status.name, STYLES[result.status]),
            result.probe,
            result.summary,
            values,
            f"{result.duration_seconds:.2f} s",
        )
    return table


def _print_fixes(console: Console, results: list[ProbeResult]) -> None:
    broken = [result for result in results if result.status is not Status.OK and result.remediation]
    if not broken:
        return
    console.print(Text("What to do (worst first; details per failure in docs/runbook.md):", "bold"))
    for result in broken:
        label = (f"  {result.probe} [{result.status.name}]: ", STYLES[result.status])
        console.print(Text.assemble(label, result.remediation))


def _print_skipped(console: Console, report: Report) -> None:
    if report.not_configured:
        console.print(Text("Not configured (skipped, not failing):", "bold"))
        for item in report.not_configured:
            console.print(f"  {item}")
