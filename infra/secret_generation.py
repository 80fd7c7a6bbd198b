"""Secret values made on this machine: fresh ones for a new environment, stand-ins for validation.

Lengths and value rules are the registry's (`infra.secrets`).
"""

from __future__ import annotations

import secrets as secrets_module
from collections.abc import Iterable

from infra.secrets import BY_KEY, SECRETS, Rule

# n8n's password policy wants a digit and an upper-case letter: generated owner passwords end in these.
_N8N_POLICY_SUFFIX = "Kz7"


def generate_secrets(keys: Iterable[str]) -> dict[str, str]:
    """Fresh secrets from the OS CSPRNG, URL-safe so they fit DSNs and env files unquoted."""
    values = {}
    for key in keys:
        spec = BY_KEY[key]
        if spec.generated_length is None:
            raise ValueError(f"{key} is issued by another service and cannot be generated: set it yourself")
        value = secrets_module.token_urlsafe(spec.generated_length)[: spec.generated_length]
        if spec.rule is Rule.N8N_PASSWORD:
            value = value[: -len(_N8N_POLICY_SUFFIX)] + _N8N_POLICY_SUFFIX
        values[key] = value
    return values


def placeholder_secrets() -> dict[str, str]:
    """Valid stand-in secrets, for validating or rendering settings when the real ones do not matter."""
    values = {}
    for spec in SECRETS:
        if spec.generated_length is None:
            continue
        value = "x" * spec.generated_length
        if spec.rule is Rule.N8N_PASSWORD:
            value = value[: -len(_N8N_POLICY_SUFFIX)] + _N8N_POLICY_SUFFIX
        values[spec.key] = value
    return values
