"""Turn invalid stack settings into problems a person can fix: key, what is wrong, a valid example.

Pydantic reports type and range errors per field; the cross-field rules here (queue mode and workers, ACME
needs) run on the raw config so they are reported in the same run as field errors. Which secrets are required is
not decided here (`infra.settings_validation` takes it from the environment model); this module only phrases
the problem. Secret values are never echoed back. It imports `infra.settings`, never the other way round.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from infra.secrets import BY_KEY, SECRET_KEYS
from infra.settings import CONFIG_NAMESPACE, SecretSettings, Settings


@dataclass(frozen=True)
class SettingsProblem:
    """One thing wrong with the stack settings, phrased for the person who must fix it."""

    key: str
    problem: str
    example: str | None = None

    def __str__(self) -> str:
        text = f"{self.key}: {self.problem}"
        return f"{text} (example: {self.example})" if self.example else text


class SettingsError(ValueError):
    """The stack settings are invalid. Carries every problem, not just the first."""

    def __init__(self, source: str, problems: list[SettingsProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"{len(problems)} problem(s) in the settings of {source}:\n{lines}\n"
            "Fix them in the stack file (stacks/Pulumi.<stack>.yaml) or with `pulumi config set`."
        )


def problems_from_validation(error: ValidationError) -> list[SettingsProblem]:
    """One problem per pydantic error, keyed by the stack-file key (`kaizenity:gateway.tlsMode`)."""
    return [_problem(item) for item in error.errors()]


def cross_field_problems(data: Mapping[str, Any]) -> list[SettingsProblem]:
    """Rules spanning several keys, checked on the raw config so they never hide behind field errors."""
    n8n = _section(data, "n8n")
    gateway = _section(data, "gateway")
    queue_mode = _truthy(n8n.get("queueMode"))
    workers = _int_or_none(n8n.get("workers"))
    problems: list[SettingsProblem] = []
    if (queue_mode and workers == 0) or (queue_mode and "workers" not in n8n):
        problems.append(_p("n8n.workers", "queue mode needs at least one worker", "2"))
    if workers and not queue_mode:
        problems.append(_p("n8n.queueMode", "workers are set but run only in queue mode", "true"))
    if str(gateway.get("tlsMode", "")).lower() == "acme":
        problems += _acme_problems(gateway)
    return problems


def _acme_problems(gateway: Mapping[str, Any]) -> list[SettingsProblem]:
    problems = []
    if not gateway.get("acmeEmail"):
        problems.append(_p("gateway.acmeEmail", "tlsMode acme needs an ACME account e-mail", "ops@example.com"))
    domain = str(gateway.get("domain", "localhost"))
    if domain == "localhost" or "." not in domain:
        problems.append(_p("gateway.domain", "tlsMode acme needs a public DNS name", "ops.example.com"))
    if _int_or_none(gateway.get("httpPort", 80)) != 80 or _int_or_none(gateway.get("httpsPort", 443)) != 443:
        problems.append(
            _p(
                "gateway.httpsPort",
                "tlsMode acme needs ports 80 and 443, where the CA validates the domain",
                "443",
            )
        )
    return problems


def missing_secret_problems(required: Iterable[str], present: Mapping[str, Any]) -> list[SettingsProblem]:
    """One problem per required secret without a value, with the command that sets it (values never shown)."""
    return [
        SettingsProblem(
            f"{CONFIG_NAMESPACE}:{key}",
            f"required secret is missing: {BY_KEY[key].purpose}",
            f"pulumi config set --secret {CONFIG_NAMESPACE}:{key} <value>",
        )
        for key in required
        if present.get(key) in (None, "")
    ]


def _p(key: str, problem: str, example: str) -> SettingsProblem:
    return SettingsProblem(f"{CONFIG_NAMESPACE}:{key}", problem, example)


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes"}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _problem(error: Any) -> SettingsProblem:
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    if loc and loc[0] == "secrets":
        loc = loc[1:]
    key = ".".join(loc) if loc else "(settings)"
    if error["type"] == "extra_forbidden":
        return SettingsProblem(f"{CONFIG_NAMESPACE}:{key}", _unknown_key_message(loc))
    message = str(error["msg"]).removeprefix("Value error, ")
    if loc and loc[-1] in SECRET_KEYS:
        message = _secret_message(error)  # never echo a secret's value back
    else:
        message = f"{message} (got {error['input']!r})" if _is_scalar(error.get("input")) else message
    return SettingsProblem(f"{CONFIG_NAMESPACE}:{key}", message, _example_for(loc))


def _secret_message(error: Any) -> str:
    limit = (error.get("ctx") or {}).get("min_length")
    if limit:
        return f"is too short: it must have at least {limit} characters (value not shown)"
    if error.get("type") == "value_error":  # our own validators' messages, which never contain the value
        return f"{str(error['msg']).removeprefix('Value error, ')} (value not shown)"
    return "is invalid (value not shown)"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(str(value)) <= 80


def _unknown_key_message(loc: list[str]) -> str:
    section: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = _field_by_alias(section, part)
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = annotation
    known = [f.alias or n for n, f in section.model_fields.items() if n != "stack"]
    if section is Settings:
        known = [k for k in known if k != "secrets"] + list(SECRET_KEYS)
    guess = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    hint = f"did you mean '{guess[0]}'?" if guess else f"known keys here: {', '.join(sorted(known))}"
    return f"unknown key: {hint}"


def _field_by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, field in model.model_fields.items():
        if alias in (name, field.alias):
            return field
    return None


def _example_for(loc: list[str]) -> str | None:
    model: type[BaseModel] = Settings
    field = None
    for part in loc:
        if part == "secrets":
            model = SecretSettings
            continue
        if part in SECRET_KEYS:
            model = SecretSettings
        field = _field_by_alias(model, part)
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    if field is None or not field.examples:
        return None
    return str(field.examples[0])
