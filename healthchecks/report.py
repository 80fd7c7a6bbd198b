"""The outcome of one health run: every probe's result plus what was not configured."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from healthchecks.plan import NotConfigured
from healthchecks.redaction import Redactor
from healthchecks.result import Check, ProbeResult, Status, worst


@dataclass(frozen=True)
class Report:
    """All results of one run. ``status`` is the worst result; no probe at all is UNKNOWN, not OK."""

    results: tuple[ProbeResult, ...]
    not_configured: tuple[NotConfigured, ...]
    started_at: datetime
    duration_seconds: float

    @property
    def status(self) -> Status:
        """Worst wins (CRITICAL > UNKNOWN > WARNING > OK); an empty run proves nothing, so UNKNOWN."""
        if not self.results:
            return Status.UNKNOWN
        return worst(result.status for result in self.results)

    @property
    def exit_code(self) -> int:
        """The Nagios exit code of the whole run."""
        return self.status.exit_code

    def redacted(self, redactor: Redactor) -> Report:
        """A copy with every free text redacted, before any formatter can wrap or split a secret."""
        return dataclasses.replace(self, results=tuple(_redact_result(result, redactor) for result in self.results))


def _redact_result(result: ProbeResult, redactor: Redactor) -> ProbeResult:
    return dataclasses.replace(
        result,
        summary=redactor(result.summary),
        remediation=redactor(result.remediation),
        checks=tuple(Check(check.name, check.status, redactor(check.text)) for check in result.checks),
    )
