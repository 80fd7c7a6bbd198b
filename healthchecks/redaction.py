"""Keep secrets out of every output, error and log line.

Two layers, because either alone leaks: the configured secret values themselves (and their URL-encoded
forms, since tokens travel in URLs), and patterns that look like credentials whatever their value (a
Telegram token in a path, ``Bearer ...``, a DSN password, Slack ``xox?-`` tokens). Every output format and
the runner's exception handling go through one :class:`Redactor`, so there is a single place to get right.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram puts the token in the path: /bot123456:AA.../getMe
    (re.compile(r"bot\d+:[A-Za-z0-9_-]+"), f"bot{MASK}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {MASK}"),
    # user:password@ in URLs and DSNs
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@"), rf"\1:{MASK}@"),
    # password=... in key/value DSNs and query strings
    (re.compile(r"(?i)\b(password|passwd|pwd|api[_-]?key|access_token|token)=([^\s&;'\"]+)"), rf"\1={MASK}"),
    (re.compile(r"(?i)(x-n8n-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), rf"\1{MASK}"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{6,}"), MASK),
)


class Redactor:
    """Replaces known secret values and credential-shaped text with ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret value (and its URL-encoded spellings). Empty values are ignored."""
        if not secret:
            return
        self._secrets.update({secret, quote(secret, safe=""), quote(secret), quote_plus(secret)})

    @property
    def secrets(self) -> frozenset[str]:
        """Every registered spelling, for tests that assert nothing leaked."""
        return frozenset(self._secrets)

    def __call__(self, text: str) -> str:
        """The text with every secret masked: known values first (longest first), then patterns."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def exception(self, exc: BaseException) -> str:
        """``Type: message`` of an exception, redacted: httpx errors carry the request URL, tokens and all."""
        message = str(exc) or exc.__class__.__name__
        return self(f"{exc.__class__.__name__}: {message}")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's final message (httpx logs full request URLs at INFO)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.msg += "\n" + self._redactor.exception(record.exc_info[1])
            record.exc_info = None
        return True


def guard_loggers(redactor: Redactor, names: Iterable[str] = ("httpx", "httpcore", "psycopg")) -> None:
    """Attach a redacting filter to the loggers of libraries that log URLs or connection strings."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter(redactor))
