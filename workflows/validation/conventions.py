"""This project's conventions for its own workflows (not n8n's rules), reported in their own section.

- the name starts with `Kaizenity: `: the seeder recognises managed workflows by it and never touches others;
- every credential a node uses is declared in workflows/credentials.yaml, with the type the node asks for;
- every `%%placeholder%%` is declared in workflows/parameters.yaml;
- a workflow name is used by one file only (the seeder matches by name), and a workflow has at least one node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from workflows.definitions import MANAGED_PREFIX, CredentialSpec, Parameter, placeholders
from workflows.validation.problems import Problem, Section, node_label


def _problem(file: str, message: str, node: str | None = None, field: str | None = None) -> Problem:
    return Problem(file, message, node, field, Section.CONVENTIONS)


def check_conventions(
    file: str, data: dict[str, Any], credentials: Mapping[str, CredentialSpec], parameters: Mapping[str, Parameter]
) -> list[Problem]:
    problems = []
    name = data.get("name")
    if not isinstance(name, str) or not name.startswith(MANAGED_PREFIX):
        problems.append(
            _problem(file, f"must be a string starting with {MANAGED_PREFIX!r} (got {name!r})", None, "name")
        )
    nodes = data.get("nodes")
    if isinstance(nodes, list) and not nodes:
        problems.append(_problem(file, "has no nodes", None, "nodes"))
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        if isinstance(node, dict) and isinstance(node.get("credentials"), dict):
            problems += _check_credentials(file, node_label(node, index), node["credentials"], credentials)
    problems += [
        _problem(file, f"placeholder %%{p}%% is not declared in workflows/parameters.yaml")
        for p in sorted(placeholders(data) - set(parameters))
    ]
    return problems


def _check_credentials(
    file: str, label: str, refs: dict[str, Any], credentials: Mapping[str, CredentialSpec]
) -> list[Problem]:
    problems = []
    for cred_type, ref in refs.items():
        cred_name = ref.get("name") if isinstance(ref, dict) else ref
        spec = credentials.get(cred_name) if isinstance(cred_name, str) else None
        field = f"credentials.{cred_type}"
        if spec is None:
            problems.append(
                _problem(file, f"{cred_name!r} is not declared in workflows/credentials.yaml", label, field)
            )
        elif spec.type != cred_type:
            problems.append(_problem(file, f"{cred_name!r} is declared as type {spec.type}", label, field))
    return problems


def check_unique_names(named: list[tuple[str, Any]]) -> list[Problem]:
    """(file, workflow name) pairs: a name used by two files would make the seeder overwrite one with the other."""
    counts = Counter(name for _, name in named if isinstance(name, str) and name)
    return [
        _problem(file, f"workflow name {name!r} is used by {counts[name]} files")
        for file, name in named
        if isinstance(name, str) and counts[name] > 1
    ]
