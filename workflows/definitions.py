"""Workflow definitions, their parameters and declared credentials, as read from `workflows/`.

Managed workflows are recognised in n8n by name: every definition's name starts with `Kaizenity: `, so the
seeder can tell them from workflows people built in the editor, which it never touches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.model import internal_route_token
from infra.secrets import SECRETS

ROOT = Path(__file__).resolve().parent
DEFINITIONS_DIR = ROOT / "definitions"
MANAGED_PREFIX = "Kaizenity: "
PLACEHOLDER = re.compile(r"%%([A-Za-z][A-Za-z0-9]*)%%")


@dataclass(frozen=True)
class Parameter:
    name: str
    secret: bool = False
    default: str | None = None


@dataclass(frozen=True)
class CredentialSpec:
    name: str
    type: str
    fields: dict[str, str] = field(default_factory=dict)  # n8n field -> parameter name
    static: dict[str, Any] = field(default_factory=dict)  # n8n field -> constant value


@dataclass(frozen=True)
class Definition:
    """One workflow file: its raw JSON (placeholders unresolved) and where it came from."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))


def load_parameters(path: Path = ROOT / "parameters.yaml") -> dict[str, Parameter]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        name: Parameter(name, bool(spec.get("secret", False)), _default(spec, path.parent))
        for name, spec in raw.items()
    }


def _default(spec: Mapping[str, Any], root: Path) -> str | None:
    """A parameter's default: ``default``, or ``file`` (a YAML file next to parameters.yaml) as compact JSON."""
    if spec.get("file"):
        data = yaml.safe_load((root / str(spec["file"])).read_text(encoding="utf-8"))
        # \u0027 for "'": the JSON may be pasted into a single-quoted SQL literal ('%%codaTables%%'::jsonb)
        return json.dumps(data, separators=(",", ":"), sort_keys=True).replace("'", "\\u0027")
    return None if spec.get("default") is None else str(spec["default"])


def load_credentials(path: Path = ROOT / "credentials.yaml") -> dict[str, CredentialSpec]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        name: CredentialSpec(name, str(spec["type"]), dict(spec.get("fields") or {}), dict(spec.get("static") or {}))
        for name, spec in raw.items()
    }


def substitute(value: Any, values: dict[str, str]) -> Any:
    """`value` with every %%name%% replaced (a whole-string placeholder of a number becomes that number)."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and re.fullmatch(r"-?\d+", values[whole[1]]):
            return int(values[whole[1]])
        return PLACEHOLDER.sub(lambda m: values[m[1]], value)
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    return value


def placeholders(value: Any) -> set[str]:
    """Every %%name%% used anywhere in `value`."""
    return set(PLACEHOLDER.findall(json.dumps(value)))


def values_from_secrets(
    secrets: Mapping[str, str], database_name: str, parameters: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Seed values from a stack's workflow parameters and secrets: one mapping for Pulumi and the local engine.

    Which secret feeds which parameter, and in what form, is the secret registry's (`infra.secrets`).
    """
    values = dict(parameters or {})
    for spec in SECRETS:
        if spec.seed_value and secrets.get(spec.key):
            values[spec.seed_value] = spec.seed_format.format(secrets[spec.key])
    if values.get("telegramWebhookPathToken"):  # n8n registers the one-way internal route (infra/services/gateway.py)
        values["telegramWebhookPathToken"] = internal_route_token(values["telegramWebhookPathToken"])
    values["databaseName"] = database_name
    return values
