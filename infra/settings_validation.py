"""Raw stack config -> valid :class:`~infra.settings.Settings`, with every problem reported at once.

Three kinds of rules, all checked in one run: the fields (pydantic, `infra.settings`), the rules spanning several
keys (`infra.settings_problems.cross_field_problems`), and the rules the environment model decides: which
secrets are required (exactly the secrets a container refers to, plus those the seed workflows use; see
`infra.secrets`) and whether two services publish the same host address and port. The model is the single
source of both, so they are checked here, one layer above the service builders, not re-derived in the settings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from infra.environment import build_environment
from infra.model import EnvironmentModel
from infra.secrets import SECRET_KEYS, Needed, keys_needed
from infra.settings import CONFIG_NAMESPACE, Settings
from infra.settings_problems import (
    SettingsError,
    SettingsProblem,
    cross_field_problems,
    missing_secret_problems,
    problems_from_validation,
)


def parse_settings(stack: str, config: Mapping[str, Any], source: str | None = None) -> Settings:
    """Validate raw config (keys without the `kaizenity:` namespace) into :class:`Settings`.

    Secret keys (`postgresPassword` ...) sit at the top level of ``config`` like in the stack file and are
    moved into the ``secrets`` section here. Raises :class:`SettingsError` listing every problem.
    """
    source = source or f"stack '{stack}'"
    data = _sectioned(stack, config)
    problems = cross_field_problems(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        field_problems = problems_from_validation(exc)
        raise SettingsError(source, field_problems + problems + _secrets_despite_field_errors(data, exc)) from None
    model = build_environment(settings)
    problems += missing_secret_problems(required_secret_keys(model), data["secrets"])
    problems += port_clash_problems(model)
    if problems:
        raise SettingsError(source, problems)
    return settings


def required_secret_keys(model: EnvironmentModel) -> list[str]:
    """The secrets an environment needs: those its containers refer to, and those the seed workflows use."""
    return sorted(model.secret_keys() | set(keys_needed(Needed.BY_SEEDING)))


def port_clash_problems(model: EnvironmentModel) -> list[SettingsProblem]:
    """Two services publishing the same host address and port cannot both start: each key names the other."""
    owners: dict[tuple[str, int], list[str]] = {}
    for _service, port in model.published_ports():
        owners.setdefault((port.host_ip, port.host_port), []).append(port.setting)
    return [
        SettingsProblem(f"{CONFIG_NAMESPACE}:{key}", f"{address}:{number} is also used by {other}", "8443")
        for (address, number), keys in owners.items()
        for key in keys
        for other in keys
        if other != key
    ]


def _sectioned(stack: str, config: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"stack": stack, "secrets": {}}
    for key, value in config.items():
        if key in SECRET_KEYS:
            data["secrets"][key] = value
        else:
            data[key] = value
    return data


def _secrets_despite_field_errors(data: dict[str, Any], error: ValidationError) -> list[SettingsProblem]:
    """Missing secrets, even while fields are invalid: the model of the config with the invalid keys left out
    (their defaults instead) says which secrets it needs. Presence is judged on the raw config, so a secret that
    is merely invalid is reported once, as invalid."""
    trimmed = _without(data, [tuple(str(part) for part in item["loc"]) for item in error.errors()])
    try:
        model = build_environment(Settings.model_validate(trimmed))
    except ValidationError:
        return []
    return missing_secret_problems(required_secret_keys(model), data["secrets"])


def _without(data: dict[str, Any], locations: list[tuple[str, ...]]) -> dict[str, Any]:
    trimmed = copy.deepcopy(data)
    for loc in locations:
        section: Any = trimmed
        for part in loc[:-1]:
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(loc[-1], None)
    return trimmed
