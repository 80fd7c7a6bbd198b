"""JSON: the whole report, for tools and for attaching to an incident ticket."""

from __future__ import annotations

import json
from typing import Any

from healthchecks.report import Report
from healthchecks.result import Measurement, ProbeResult


def render_json(report: Report) -> str:
    """A stable document: overall status and exit code, every probe, what was not configured."""
    document = {
        "status": report.status.name,
        "exit_code": report.exit_code,
        "started_at": report.started_at.isoformat(),
        "duration_seconds": round(report.duration_seconds, 4),
        "probes": [_probe(result) for result in report.results],
        "not_configured": [
            {"probe": item.probe, "missing": list(item.missing), "purpose": item.purpose}
            for item in report.not_configured
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _probe(result: ProbeResult) -> dict[str, Any]:
    return {
        "probe": result.probe,
        "status": result.status.name,
        "summary": result.summary,
        "remediation": result.remediation,
        "duration_seconds": round(result.duration_seconds, 4),
        "checks": [{"check": c.name, "status": c.status.name, "text": c.text} for c in result.checks],
        "measurements": [_measurement(m) for m in result.measurements],
    }


def _measurement(measurement: Measurement) -> dict[str, Any]:
    return {
        "name": measurement.name,
        "value": measurement.value,
        "unit": measurement.unit.nagios or "count",
        "warning": measurement.warning,
        "critical": measurement.critical,
        "low_is_bad": measurement.low_is_bad,
    }
