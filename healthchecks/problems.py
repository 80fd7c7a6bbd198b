"""A finding that ends a probe early, carrying the status, the sentence and the fix.

Probes raise :class:`Problem` from deep inside helpers (an HTTP call that was refused, a body that is not
JSON) and catch it once at the top, so the happy path reads straight through and every failure still says
what broke, why, and what to do.
"""

from __future__ import annotations

from healthchecks.result import ResultBuilder, Status


class Problem(Exception):
    """A non-OK finding: ``check`` names the sub-check, ``text`` the cause, ``remediation`` the fix."""

    def __init__(self, check: str, status: Status, text: str, remediation: str = "") -> None:
        super().__init__(text)
        self.check = check
        self.status = status
        self.text = text
        self.remediation = remediation

    def record(self, builder: ResultBuilder) -> None:
        """Add this finding to a probe's result."""
        builder.add(self.check, self.status, self.text, self.remediation)
