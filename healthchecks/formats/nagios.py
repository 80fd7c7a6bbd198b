"""Nagios plugin output: ``STATUS: text | perfdata`` on the first line, one line per probe after it."""

from __future__ import annotations

import re

from healthchecks.report import Report
from healthchecks.result import Measurement, Status


def render_nagios(report: Report) -> str:
    """First line for the alert, then details with the fix for each non-OK probe."""
    perfdata = " ".join(
        perf_item(f"{result.probe}_{m.name}", m) for result in report.results for m in result.measurements
    )
    first = f"{report.status.name}: {_headline(report)}"
    lines = [f"{first} | {perfdata}" if perfdata else first]
    for result in report.results:
        lines.append(f"[{result.status.name}] {result.probe}: {_one_line(result.summary)}")
        if result.status is not Status.OK and result.remediation:
            lines.append(f"    fix: {_one_line(result.remediation)}")
    lines += [f"[SKIPPED] {item}" for item in report.not_configured]
    return "\n".join(lines) + "\n"


def _headline(report: Report) -> str:
    if not report.results:
        return "no probe configured"
    parts = []
    for status in (Status.CRITICAL, Status.UNKNOWN, Status.WARNING, Status.OK):
        names = [result.probe for result in report.results if result.status is status]
        if names:
            parts.append(f"{len(names)} {status.name.lower()} ({', '.join(names)})")
    return "; ".join(parts)


def perf_item(label: str, measurement: Measurement) -> str:
    """``'label'=value[UOM];[warn];[crit];[min];[max]`` with ``N:`` ranges for low-is-bad values."""
    fields = [
        f"{_number(measurement.value)}{measurement.unit.nagios}",
        _threshold(measurement.warning, measurement.low_is_bad),
        _threshold(measurement.critical, measurement.low_is_bad),
        _number(measurement.minimum),
        _number(measurement.maximum),
    ]
    return f"'{_label(label)}'=" + ";".join(fields).rstrip(";")


def _threshold(value: float | None, low_is_bad: bool) -> str:
    if value is None:
        return ""
    return f"{_number(value)}:" if low_is_bad else _number(value)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _label(text: str) -> str:
    return re.sub(r"['=]", "_", text)


def _one_line(text: str) -> str:
    return " ".join(text.replace("|", "/").split())
