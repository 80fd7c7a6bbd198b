"""Prometheus text exposition, blackbox_exporter style: ``probe_success`` and ``probe_duration_seconds``
per probe, plus every measured value as a gauge with a ``probe`` label (base units: seconds, bytes, ratio).

Written by hand rather than with prometheus_client so the runtime needs no extra dependency; tests parse
it with prometheus_client's parser to keep it honest.
"""

from __future__ import annotations

from collections import defaultdict

from healthchecks.report import Report
from healthchecks.result import Measurement, Status

PREFIX = "kaizenity_probe_"
# A WARNING (a 429, a certificate three weeks from expiry) is not an outage: an alert on probe_success == 0,
# as blackbox_exporter users write them, must not fire for it. kaizenity_probe_status carries the detail.
SUCCESS = frozenset({Status.OK, Status.WARNING})


def render_prometheus(report: Report) -> str:
    """All gauges, grouped by metric with one HELP/TYPE each."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    helps: dict[str, str] = {
        "probe_success": "1 when the dependency works (OK or WARNING, e.g. rate-limited), 0 when CRITICAL or UNKNOWN.",
        "probe_duration_seconds": "How long the probe took.",
        f"{PREFIX}status": "Probe status as a Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        f"{PREFIX}configured": "Whether the probe has the settings it needs (0 = skipped, not configured).",
    }
    for result in report.results:
        labels = {"probe": result.probe}
        samples["probe_success"].append((labels, 1.0 if result.status in SUCCESS else 0.0))
        samples["probe_duration_seconds"].append((labels, result.duration_seconds))
        samples[f"{PREFIX}status"].append((labels, float(result.status.value)))
        samples[f"{PREFIX}configured"].append((labels, 1.0))
        for measurement in result.measurements:
            name = metric_name(measurement)
            helps.setdefault(name, f"Measured {measurement.name.replace('_', ' ')}.")
            samples[name].append((labels, measurement.value * measurement.unit.prometheus_factor))
    for item in report.not_configured:
        samples[f"{PREFIX}configured"].append(({"probe": item.probe}, 0.0))
    return "".join(_family(name, helps[name], rows) for name, rows in samples.items())


def metric_name(measurement: Measurement) -> str:
    """``kaizenity_probe_<name>[_<base unit>]``, e.g. kaizenity_probe_cert_expiry_seconds."""
    suffix = measurement.unit.prometheus_suffix
    name = f"{PREFIX}{measurement.name}"
    return f"{name}_{suffix}" if suffix and not name.endswith(suffix) else name


def _family(name: str, help_text: str, rows: list[tuple[dict[str, str], float]]) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{{{_labels(labels)}}} {_value(value)}" for labels, value in rows]
    return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    return repr(float(value))
