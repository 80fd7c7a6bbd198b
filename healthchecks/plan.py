"""What to run: the configured probes with their targets, and what could not be configured and why."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from healthchecks.context import ProbeContext
from healthchecks.redaction import Redactor
from healthchecks.result import ProbeResult

T = TypeVar("T")

ProbeFn = Callable[[T, ProbeContext], ProbeResult]


@dataclass(frozen=True)
class Planned(Generic[T]):
    """One probe to run: the uniform ``probe(target, ctx)`` function, its target and its budget."""

    name: str
    probe: Callable[[T, ProbeContext], ProbeResult]
    target: T
    timeout: float = 5.0
    retries: int = 2


@dataclass(frozen=True)
class NotConfigured:
    """A probe (or part of one) that was skipped, naming exactly which settings are missing for what."""

    probe: str
    missing: tuple[str, ...]
    purpose: str

    def __str__(self) -> str:
        return f"{self.probe}: not configured, set {' and '.join(self.missing)} ({self.purpose})"


@dataclass(frozen=True)
class Plan:
    """Everything the runner needs. The redactor already knows every configured secret."""

    planned: tuple[Planned[Any], ...]
    not_configured: tuple[NotConfigured, ...] = ()
    redactor: Redactor = field(default_factory=Redactor)

    def select(self, only: Iterable[str] = (), skip: Iterable[str] = ()) -> Plan:
        """The plan restricted by ``--only``/``--skip`` (names match the probe or its prefix, e.g. n8n)."""
        only_set, skip_set = set(only), set(skip)

        def wanted(name: str) -> bool:
            base = name.split(".", maxsplit=1)[0]
            return (not only_set or bool({name, base} & only_set)) and not ({name, base} & skip_set)

        return Plan(
            tuple(item for item in self.planned if wanted(item.name)),
            tuple(item for item in self.not_configured if wanted(item.probe)),
            self.redactor,
        )

    def with_timeout(self, seconds: float) -> Plan:
        """The plan with every probe's budget replaced (``--timeout``)."""
        planned = tuple(dataclasses.replace(item, timeout=seconds) for item in self.planned)
        return dataclasses.replace(self, planned=planned)
