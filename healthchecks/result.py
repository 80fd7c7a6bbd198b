"""What a probe reports: a status, a one-line summary, measured values and what to do about it.

The shape follows the Nagios plugin contract (status + text + perfdata) because that is the lowest common
denominator every output format can be derived from: a human table, JSON, Prometheus gauges, Nagios lines.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Status(enum.Enum):
    """A probe's verdict. The value is the Nagios exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def severity(self) -> int:
        """Rank for "worst wins": OK < WARNING < UNKNOWN < CRITICAL.

        UNKNOWN ranks above WARNING (we could not tell, so someone must look) but below CRITICAL: a known
        outage must never be hidden behind a probe that merely could not decide.
        """
        return _SEVERITY[self]

    @property
    def exit_code(self) -> int:
        """The Nagios plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
        return self.value


_SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status of several; OK when there are none."""
    return max(statuses, key=lambda status: status.severity, default=Status.OK)


class Unit(enum.Enum):
    """Units of measured values, with their Nagios UOM and Prometheus base-unit suffix."""

    SECONDS = ("s", "seconds", 1.0)
    BYTES = ("B", "bytes", 1.0)
    PERCENT = ("%", "ratio", 0.01)
    COUNT = ("", "", 1.0)

    @property
    def nagios(self) -> str:
        """Nagios perfdata unit of measure."""
        return self.value[0]

    @property
    def prometheus_suffix(self) -> str:
        """Suffix of the Prometheus metric name (base units, as Prometheus naming rules ask)."""
        return self.value[1]

    @property
    def prometheus_factor(self) -> float:
        """Multiplier from this unit to the Prometheus base unit (percent -> ratio)."""
        return self.value[2]


@dataclass(frozen=True)
class Measurement:
    """One measured value, with optional thresholds, for perfdata and Prometheus gauges.

    ``low_is_bad`` marks values that alert when they fall below the thresholds (days of certificate left),
    so Nagios renders them as ``N:`` ranges.
    """

    name: str
    value: float
    unit: Unit = Unit.COUNT
    warning: float | None = None
    critical: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    low_is_bad: bool = False


@dataclass(frozen=True)
class Check:
    """One finding inside a probe: a sub-check's own status and sentence, for the details section."""

    name: str
    status: Status
    text: str


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe run: everything an on-call engineer needs about one dependency."""

    probe: str
    status: Status
    summary: str
    remediation: str = ""
    measurements: tuple[Measurement, ...] = ()
    checks: tuple[Check, ...] = ()
    duration_seconds: float = 0.0


@dataclass
class ResultBuilder:
    """Accumulates sub-check findings and measurements; the worst finding decides the probe's status.

    Probes check several things (token, webhook, backlog ...); the summary names every non-OK finding so
    the table's single line already says what is wrong, and the remediation of the worst one comes first.
    """

    probe: str
    checks: list[Check] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    remediations: list[tuple[Status, str]] = field(default_factory=list)

    def add(self, name: str, status: Status, text: str, remediation: str = "") -> None:
        """Record one finding; its remediation is kept only when the finding is not OK."""
        self.checks.append(Check(name, status, text))
        if status is not Status.OK and remediation:
            self.remediations.append((status, remediation))

    def measure(self, measurement: Measurement) -> None:
        """Record one measured value."""
        self.measurements.append(measurement)

    def build(self, ok_summary: str = "") -> ProbeResult:
        """The probe's result: worst status wins; the summary lists the problems, else ``ok_summary``
        (default: the OK findings joined)."""
        status = worst(check.status for check in self.checks) if self.checks else Status.UNKNOWN
        problems = [check.text for check in self.checks if check.status is not Status.OK]
        ok_summary = ok_summary or "; ".join(check.text for check in self.checks) or "nothing was checked"
        ordered = sorted(self.remediations, key=lambda item: -item[0].severity)
        return ProbeResult(
            probe=self.probe,
            status=status,
            summary="; ".join(problems) if problems else ok_summary,
            remediation=" ".join(dict.fromkeys(text for _, text in ordered)),
            measurements=tuple(self.measurements),
            checks=tuple(self.checks),
        )
