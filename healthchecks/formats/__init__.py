"""Output formats of a health report: table (people), json (tools), prometheus (scraping), nagios (alerting).

:func:`render` is the only entry point and does the redaction for all of them, twice: on the report's
texts before formatting (a table may wrap a long secret across lines, where a later search would miss it)
and on the final text (belt and braces for anything a formatter adds).
"""

from __future__ import annotations

from collections.abc import Callable

from healthchecks.redaction import Redactor
from healthchecks.report import Report

FORMATS = ("table", "json", "prometheus", "nagios")


def render(report: Report, fmt: str, redactor: Redactor, color: bool | None = None) -> str:
    """The report in ``fmt``; ``color`` None means auto (a TTY and no NO_COLOR), tables only."""
    clean = report.redacted(redactor)
    return redactor(_renderer(fmt, color)(clean))


def _renderer(fmt: str, color: bool | None) -> Callable[[Report], str]:
    if fmt == "table":
        from healthchecks.formats.table import render_table

        return lambda report: render_table(report, color)
    if fmt == "json":
        from healthchecks.formats.json_format import render_json

        return render_json
    if fmt == "prometheus":
        from healthchecks.formats.prometheus import render_prometheus

        return render_prometheus
    if fmt == "nagios":
        from healthchecks.formats.nagios import render_nagios

        return render_nagios
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
