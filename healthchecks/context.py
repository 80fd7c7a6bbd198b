"""What every probe receives besides its target: its time budget, retry budget, clock and redactor.

The timeout is the probe's *whole* budget, retries included: a hung dependency must cost one timeout, never
timeout x attempts, or the suite's wall time would grow with every retry of every dead service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from healthchecks.redaction import Redactor


def utc_now() -> datetime:
    """The current time, timezone-aware (certificate expiry and heartbeat ages are wall-clock facts)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ProbeContext:
    """Per-run settings shared by all probes. Create one per probe run: the deadline starts at creation."""

    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.2
    redactor: Redactor = field(default_factory=Redactor)
    now: Callable[[], datetime] = utc_now
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        """Seconds left of this probe's budget (never negative)."""
        return max(0.0, self.started + self.timeout - time.monotonic())

    def elapsed(self) -> float:
        """Seconds since the probe started."""
        return time.monotonic() - self.started
