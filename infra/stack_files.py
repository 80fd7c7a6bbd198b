"""Read `stacks/Pulumi.<stack>.yaml` without Pulumi, for the local engine, CI and tests.

The Pulumi SDK never reads these files itself (the CLI passes config to the program), so everything that runs
without the CLI goes through here. Encrypted `secure:` values cannot be decrypted without Pulumi: they are
reported by key, and the caller supplies secrets from its own store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.project_files import stack_search_path, stacks_dir
from infra.settings import CONFIG_NAMESPACE
from infra.settings_problems import SettingsError, SettingsProblem

__all__ = ["KNOWN_NAMESPACES", "StackConfig", "available_stacks", "load_stack_config", "stacks_dir"]


# Namespaces Pulumi itself or our provider read; anything else in a stack file is a typo.
KNOWN_NAMESPACES = {CONFIG_NAMESPACE, "docker", "pulumi"}


@dataclass(frozen=True)
class StackConfig:
    """The `kaizenity:` config of one stack file, namespace stripped, and which keys were encrypted."""

    stack: str
    path: Path
    values: dict[str, Any]
    secure_keys: tuple[str, ...] = ()
    other: dict[str, Any] = field(default_factory=dict)  # e.g. docker:host


def available_stacks(directory: Path | None = None) -> list[str]:
    """Stack names that have a file in the stacks directory."""
    directories = [directory] if directory else stack_search_path()
    found = {p for d in directories for p in d.glob("Pulumi.*.yaml")}
    return sorted({p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in found})


def load_stack_config(stack: str, directory: Path | None = None) -> StackConfig:
    """Parse one stack file; a missing file, bad YAML or an unknown namespace is a :class:`SettingsError`."""
    directories = [directory] if directory else stack_search_path()
    candidates = [d / f"Pulumi.{stack}.yaml" for d in directories]
    path = next((c for c in candidates if c.is_file()), candidates[0])
    if not path.is_file():
        known = ", ".join(available_stacks(directory)) or "none"
        raise SettingsError(
            str(path),
            [SettingsProblem("stack", f"no stack file for '{stack}' (stacks here: {known})", "dev")],
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(str(path), [SettingsProblem("(file)", f"is not valid YAML: {exc}")]) from None
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise SettingsError(str(path), [SettingsProblem("config", "must be a mapping of key: value")])
    return _split(stack, path, config)


def _split(stack: str, path: Path, config: dict[str, Any]) -> StackConfig:
    values: dict[str, Any] = {}
    other: dict[str, Any] = {}
    secure: list[str] = []
    problems: list[SettingsProblem] = []
    for full_key, value in config.items():
        namespace, sep, key = str(full_key).partition(":")
        if not sep or namespace not in KNOWN_NAMESPACES:
            problems.append(
                SettingsProblem(
                    str(full_key), "unknown namespace: our keys start with 'kaizenity:'", "kaizenity:gateway"
                )
            )
        elif namespace != CONFIG_NAMESPACE:
            other[str(full_key)] = value
        elif isinstance(value, dict) and set(value) == {"secure"}:
            secure.append(key)
        else:
            values[key] = value
    if problems:
        raise SettingsError(str(path), problems)
    return StackConfig(stack, path, values, tuple(secure), other)
