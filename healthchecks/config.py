"""Targets and secrets for the probes: from a plain dict, a YAML file, or environment variables.

:func:`build_plan` takes a plain nested dict (``{"coda": {"token": ..., "doc_id": ...}, ...}``) so that the
same code serves ``--config`` files, the environment, and later the Pulumi stack outputs or local stack
state. A probe whose required settings are absent is not an error: it is listed as not configured, naming
the exact setting (environment variable and YAML key) and what it is for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from healthchecks import backups, coda, database, gateway, n8n, n8n_queue, slack, telegram, whatsapp
from healthchecks import redis as redis_probe
from healthchecks.heartbeat import HeartbeatSource, sql_heartbeat
from healthchecks.migrations import DEFAULT_DIR
from healthchecks.n8n_state import SqlN8nState
from healthchecks.plan import NotConfigured, Plan, Planned
from healthchecks.redaction import Redactor

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2

# environment variable -> (section, key). Secrets are marked in SECRET_KEYS.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "KAIZENITY_HEALTH_TIMEOUT": ("defaults", "timeout"),
    "KAIZENITY_HEALTH_RETRIES": ("defaults", "retries"),
    "KAIZENITY_DATABASE_URL": ("database", "url"),
    "KAIZENITY_N8N_URL": ("n8n", "url"),
    "KAIZENITY_N8N_READER_DATABASE_URL": ("n8n", "database_url"),
    "KAIZENITY_N8N_SEED_WORKFLOWS": ("n8n", "seed_workflows"),
    "KAIZENITY_N8N_HEARTBEAT_SOURCE": ("n8n", "heartbeat_source"),
    "KAIZENITY_BACKUPS_DATABASE_URL": ("backups", "url"),
    "KAIZENITY_BACKUPS_BASE_AGE_WARNING_HOURS": ("backups", "base_age_warning_hours"),
    "KAIZENITY_BACKUPS_BASE_AGE_CRITICAL_HOURS": ("backups", "base_age_critical_hours"),
    "KAIZENITY_GATEWAY_URL": ("gateway", "url"),
    "KAIZENITY_GATEWAY_TLS_WARNING_DAYS": ("gateway", "tls_warning_days"),
    "KAIZENITY_GATEWAY_TLS_CRITICAL_DAYS": ("gateway", "tls_critical_days"),
    "KAIZENITY_GATEWAY_TLS_INTERNAL": ("gateway", "tls_internal"),
    "KAIZENITY_GATEWAY_CA_FILE": ("gateway", "ca_file"),
    "KAIZENITY_REDIS_URL": ("redis", "url"),
    "KAIZENITY_QUEUE_EXPECTED_WORKERS": ("queue", "expected_workers"),
    "KAIZENITY_N8N_DATABASE_URL": ("queue", "n8n_database_url"),
    "CODA_API_TOKEN": ("coda", "token"),
    "CODA_DOC_ID": ("coda", "doc_id"),
    "CODA_API_BASE_URL": ("coda", "base_url"),
    "CODA_REQUIRED_TABLES": ("coda", "required_tables"),
    "TELEGRAM_BOT_TOKEN": ("telegram", "token"),
    "TELEGRAM_API_BASE_URL": ("telegram", "base_url"),
    "TELEGRAM_WEBHOOK_URL": ("telegram", "webhook_url"),
    "SLACK_BOT_TOKEN": ("slack", "token"),
    "SLACK_API_BASE_URL": ("slack", "base_url"),
    "SLACK_REQUIRED_SCOPES": ("slack", "required_scopes"),
    "WHATSAPP_TOKEN": ("whatsapp", "token"),
    "WHATSAPP_PHONE_NUMBER_ID": ("whatsapp", "phone_number_id"),
    "WHATSAPP_API_BASE_URL": ("whatsapp", "base_url"),
    "WHATSAPP_API_VERSION": ("whatsapp", "api_version"),
}
SECRET_KEYS = frozenset({("coda", "token"), ("telegram", "token"), ("slack", "token"), ("whatsapp", "token")})
DSN_KEYS = frozenset(
    {
        ("database", "url"),
        ("n8n", "heartbeat_database_url"),
        ("n8n", "database_url"),
        ("redis", "url"),
        ("queue", "n8n_database_url"),
        ("backups", "url"),
    }
)
PROBES = ("database", "n8n", "gateway", "redis", "queue", "coda", "telegram", "slack", "whatsapp", "backups")


class ConfigError(ValueError):
    """Settings that are present but unusable (a threshold that is not a number...). Lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the health-check settings:\n{lines}")


def load_settings(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str], stack: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Stack outputs, overlaid by the YAML file (if any), overlaid by the environment (which wins)."""
    base = merge(stack or {}, _load_yaml(Path(path)) if path else {})
    return merge(base, settings_from_env(environ))


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"--config {path}: cannot read it ({exc.strerror}); pass an existing file"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"--config {path}: not valid YAML ({exc.__class__.__name__}); fix the syntax"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"--config {path}: must be a mapping of sections (database:, n8n: ...)"])
    return data


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested settings dict described by the environment variables in :data:`ENVIRONMENT`."""
    settings: dict[str, dict[str, Any]] = {}
    for variable, (section, key) in ENVIRONMENT.items():
        value = environ.get(variable, "").strip()
        if value:
            settings.setdefault(section, {})[key] = value
    return dict(settings)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Section-wise merge: keys of ``override`` replace those of ``base``."""
    merged: dict[str, Any] = {name: dict(section) for name, section in base.items() if isinstance(section, Mapping)}
    for name, section in override.items():
        merged.setdefault(name, {}).update(section)
    return merged


def collect_secrets(data: Mapping[str, Any]) -> Redactor:
    """A redactor that knows every secret in the settings: tokens, API keys and DSN passwords."""
    redactor = Redactor()
    for section, key in SECRET_KEYS:
        redactor.add(_raw(data, section, key))
    for section, key in DSN_KEYS:
        for secret in dsn_passwords(_raw(data, section, key) or ""):
            redactor.add(secret)
    return redactor


def dsn_passwords(dsn: str) -> list[str]:
    """The password in a URL-style or key=value PostgreSQL connection string (both spellings)."""
    if "://" in dsn:
        password = urlsplit(dsn).password
        return [password, unquote(password)] if password else []
    import shlex

    try:
        pairs = [item.split("=", 1) for item in shlex.split(dsn) if "=" in item]
    except ValueError:
        return []
    return [value for key, value in pairs if key.strip().lower() == "password" and value]


def _raw(data: Mapping[str, Any], section: str, key: str) -> str | None:
    value = data.get(section, {}).get(key) if isinstance(data.get(section), Mapping) else None
    return None if value is None or value == "" else str(value)


@dataclass
class _Section:
    """Typed access to one section, collecting problems instead of stopping at the first."""

    name: str
    values: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def env_name(self, key: str) -> str:
        names = [env for env, where in ENVIRONMENT.items() if where == (self.name, key)]
        return f"{names[0]} / {self.name}.{key}" if names else f"{self.name}.{key}"

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key)
        return default if value is None or value == "" else str(value).strip()

    def real(self, key: str, default: float) -> float:
        value = self.number(key, default)
        return default if value is None else value

    def number(self, key: str, default: float | None) -> float | None:
        value = self.values.get(key)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            self.problems.append(f"{self.env_name(key)}: {value!r} is not a number (example: 21)")
            return default

    def flag(self, key: str, default: bool | None) -> bool | None:
        value = self.values.get(key)
        if value is None or value == "" or str(value).lower() == "auto":
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"1", "true", "yes", "on"}:
            return True
        if str(value).lower() in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{self.env_name(key)}: {value!r} is not true/false/auto")
        return default

    def names(self, key: str) -> tuple[str, ...]:
        value = self.values.get(key)
        items = value if isinstance(value, list) else str(value or "").split(",")
        return tuple(str(item).strip() for item in items if str(item).strip())

    def missing(self, *keys: str) -> tuple[str, ...]:
        return tuple(self.env_name(key) for key in keys if self.text(key) is None)


Builder = Callable[[_Section, Mapping[str, Any], list[NotConfigured]], Planned[Any] | None]


def build_plan(data: Mapping[str, Any]) -> Plan:
    """Every probe that can run with these settings, and every one that cannot with the missing settings.

    Raises :class:`ConfigError` (listing every problem) when present settings are unusable.
    """
    defaults = _Section("defaults", _mapping(data, "defaults"))
    for key, default in (("timeout", DEFAULT_TIMEOUT), ("retries", DEFAULT_RETRIES)):
        defaults.real(key, default)  # validated even when no probe is configured
    planned: list[Planned[Any]] = []
    skipped: list[NotConfigured] = []
    problems: list[str] = []
    builders: dict[str, Builder] = {
        "database": _database, "n8n": _n8n, "gateway": _gateway, "redis": _redis, "queue": _queue, "coda": _coda,
        "telegram": _telegram, "slack": _slack, "whatsapp": _whatsapp, "backups": _backups,
    }  # fmt: skip
    for name, build in builders.items():
        section = _Section(name, _mapping(data, name))
        item = build(section, data, skipped)
        if item is not None:
            planned.append(_with_budget(item, section, defaults))
        problems += section.problems
    problems += list(dict.fromkeys(defaults.problems))
    if problems:
        raise ConfigError(problems)
    return Plan(tuple(planned), tuple(skipped), collect_secrets(data))


def _mapping(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = data.get(name)
    return section if isinstance(section, Mapping) else {}


def _with_budget(item: Planned[Any], section: _Section, defaults: _Section) -> Planned[Any]:
    timeout = section.real("timeout", defaults.real("timeout", DEFAULT_TIMEOUT))
    retries = section.real("retries", defaults.real("retries", DEFAULT_RETRIES))
    if timeout <= 0:
        section.problems.append(f"{section.env_name('timeout')}: must be more than 0 seconds (example: 5)")
    return Planned(item.name, item.probe, item.target, timeout, max(0, int(retries)))


def _skip(skipped: list[NotConfigured], probe: str, missing: tuple[str, ...], purpose: str) -> None:
    skipped.append(NotConfigured(probe, missing, purpose))


def _database(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("url"):
        _skip(skipped, "database", missing, "PostgreSQL reachability, schema, connections, size")
        return None
    target = database.DatabaseTarget(
        dsn=s.text("url") or "",
        connections_warning_percent=s.real("connections_warning_percent", 80.0),
        connections_critical_percent=s.real("connections_critical_percent", 95.0),
        long_transaction_warning_seconds=s.real("long_transaction_warning_seconds", 300.0),
        long_transaction_critical_seconds=s.real("long_transaction_critical_seconds", 1800.0),
        size_warning_bytes=s.number("size_warning_bytes", None),
        size_critical_bytes=s.number("size_critical_bytes", None),
        migrations_dir=Path(s.text("migrations_dir") or DEFAULT_DIR),
    )
    return Planned("database", database.probe, target)


def _n8n(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("url"):
        _skip(skipped, "n8n", missing, "n8n liveness, readiness, workflows, executions, heartbeat")
        return None
    reader_url = s.text("database_url")
    if not reader_url:
        _skip(
            skipped,
            "n8n.state",
            s.missing("database_url"),
            "seed workflows active and failed executions (read-only login to n8n's database)",
        )
    target = n8n.N8nTarget(
        url=(s.text("url") or "").rstrip("/"),
        state=SqlN8nState(reader_url) if reader_url else None,
        seed_workflows=s.names("seed_workflows") or declared_active_workflows(),
        heartbeat=_heartbeat(s, data, skipped),
        heartbeat_warning_minutes=s.real("heartbeat_warning_minutes", 15.0),
        heartbeat_critical_minutes=s.real("heartbeat_critical_minutes", 60.0),
        failed_window_minutes=s.real("failed_executions_window_minutes", 60.0),
        failed_warning=int(s.real("failed_executions_warning", 1)),
        failed_critical=int(s.real("failed_executions_critical", 10)),
    )
    return Planned("n8n", n8n.probe, target)


def declared_active_workflows() -> tuple[str, ...]:
    """Names of the workflows git declares active (workflows/definitions): what n8n must be running."""
    import json

    from workflows.definitions import DEFINITIONS_DIR

    names = []
    for path in sorted(DEFINITIONS_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # `kaizenity workflows validate` reports it; the probe checks what it can
        if isinstance(data, dict) and data.get("active") is True:
            names.append(str(data.get("name")))
    return tuple(names)


def _heartbeat(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> HeartbeatSource | None:
    if s.flag("heartbeat", True) is False:
        return None
    dsn = s.text("heartbeat_database_url") or _raw(data, "database", "url")
    if not dsn:
        _skip(skipped, "n8n.heartbeat", ("KAIZENITY_DATABASE_URL / database.url",), "the heartbeat table's database")
        return None
    return sql_heartbeat(dsn, s.text("heartbeat_source"))


def _gateway(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("url"):
        _skip(skipped, "gateway", missing, "gateway reachability, certificate, webhook route, editor lock")
        return None
    target = gateway.GatewayTarget(
        url=(s.text("url") or "").rstrip("/"),
        tls_warning_days=s.real("tls_warning_days", 21.0),
        tls_critical_days=s.real("tls_critical_days", 7.0),
        internal_ca=s.flag("tls_internal", None),
        internal_warning_hours=s.real("internal_warning_hours", 2.0),
        ca_file=s.text("ca_file"),
        webhook_path=s.text("webhook_path", "/webhook/kaizenity-healthcheck") or "",
        editor_path=s.text("editor_path", "/") or "/",
    )
    return Planned("gateway", gateway.probe, target)


def _redis(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("url"):
        _skip(skipped, "redis", missing, "queue mode only: Redis reachable, memory, eviction policy, AOF")
        return None
    target = redis_probe.RedisTarget(
        url=s.text("url") or "",
        memory_warning_percent=s.real("memory_warning_percent", 80.0),
        memory_critical_percent=s.real("memory_critical_percent", 95.0),
        require_aof=s.flag("require_aof", True) is not False,
    )
    return Planned("redis", redis_probe.probe, target)


def _queue(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    """n8n's queue (queue mode): needs the Redis URL (from the redis section unless `queue.url` is set)."""
    url = s.text("url") or _raw(data, "redis", "url")
    if not url:
        _skip(skipped, "queue", ("KAIZENITY_REDIS_URL / redis.url",), "queue mode only: live workers and backlog")
        return None
    expected = s.number("expected_workers", None)
    target = n8n_queue.QueueTarget(
        url=url,
        prefix=s.text("prefix", "bull") or "bull",
        expected_workers=int(expected) if expected is not None else None,
        waiting_warning=int(s.real("waiting_warning", 50)),
        waiting_critical=int(s.real("waiting_critical", 500)),
        oldest_warning_seconds=s.real("oldest_warning_seconds", 60.0),
        oldest_critical_seconds=s.real("oldest_critical_seconds", 300.0),
        n8n_database_url=s.text("n8n_database_url"),
        crashed_window_minutes=s.real("crashed_window_minutes", 60.0),
        crashed_warning=int(s.real("crashed_warning", 1)),
        crashed_critical=int(s.real("crashed_critical", 10)),
        orphan_grace_seconds=s.real("orphan_grace_seconds", 60.0),
    )
    return Planned("queue", n8n_queue.probe, target)


def _coda(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("token", "doc_id"):
        _skip(skipped, "coda", missing, "Coda token, doc and tables")
        return None
    target = coda.CodaTarget(
        token=s.text("token") or "",
        doc_id=s.text("doc_id") or "",
        base_url=(s.text("base_url", coda.DEFAULT_BASE_URL) or "").rstrip("/"),
        required_tables=s.names("required_tables"),
    )
    return Planned("coda", coda.probe, target)


def _telegram(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("token"):
        _skip(skipped, "telegram", missing, "bot token and webhook delivery")
        return None
    if not s.text("webhook_url"):
        _skip(skipped, "telegram.webhook_url", s.missing("webhook_url"), "checking the webhook points at us")
    target = telegram.TelegramTarget(
        token=s.text("token") or "",
        base_url=(s.text("base_url", telegram.DEFAULT_BASE_URL) or "").rstrip("/"),
        expected_webhook_url=s.text("webhook_url"),
        pending_warning=int(s.real("pending_warning", 10)),
        pending_critical=int(s.real("pending_critical", 100)),
        error_warning_minutes=s.real("error_warning_minutes", 60.0),
        error_critical_minutes=s.real("error_critical_minutes", 10.0),
    )
    return Planned("telegram", telegram.probe, target)


def _slack(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("token"):
        _skip(skipped, "slack", missing, "Slack bot token (only if Slack is used)")
        return None
    base_url = (s.text("base_url", slack.DEFAULT_BASE_URL) or "").rstrip("/")
    scopes = s.names("required_scopes") or slack.DEFAULT_REQUIRED_SCOPES
    return Planned("slack", slack.probe, slack.SlackTarget(s.text("token") or "", base_url, scopes))


def _whatsapp(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    if missing := s.missing("token", "phone_number_id"):
        _skip(skipped, "whatsapp", missing, "WhatsApp token and business phone number (only if WhatsApp is used)")
        return None
    target = whatsapp.WhatsAppTarget(
        token=s.text("token") or "",
        phone_number_id=s.text("phone_number_id") or "",
        base_url=(s.text("base_url", whatsapp.DEFAULT_BASE_URL) or "").rstrip("/"),
        api_version=s.text("api_version", whatsapp.DEFAULT_API_VERSION) or whatsapp.DEFAULT_API_VERSION,
    )
    return Planned("whatsapp", whatsapp.probe, target)


def _backups(s: _Section, data: Mapping[str, Any], skipped: list[NotConfigured]) -> Planned[Any] | None:
    """Planned only where backups are expected (the URL is set: by hand, or by the local record when the
    environment runs a backup sidecar), so stacks without backups do not report a CRITICAL they chose."""
    if missing := s.missing("url"):
        _skip(skipped, "backups", missing, "age of the last base backup and WAL archive lag (backup sidecar)")
        return None
    target = backups.BackupsTarget(
        dsn=s.text("url") or "",
        base_age_warning_hours=s.real("base_age_warning_hours", 26.0),
        base_age_critical_hours=s.real("base_age_critical_hours", 50.0),
        lag_warning_bytes=s.real("lag_warning_bytes", 64 * 1024 * 1024),
        lag_critical_bytes=s.real("lag_critical_bytes", 1024 * 1024 * 1024),
    )
    return Planned("backups", backups.probe, target)
