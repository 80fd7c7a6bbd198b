"""`kaizenity workflows validate`: every problem in the workflow files, each naming file, node and field.

Deployment runs this first and deploys nothing when anything is wrong: a half-deployed set of workflows that
reference each other or shared webhooks is worse than the previous complete set.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflows.definitions import (
    DEFINITIONS_DIR,
    MANAGED_PREFIX,
    CredentialSpec,
    Definition,
    Parameter,
    load_credentials,
    load_known_node_types,
    load_parameters,
    placeholders,
)

REQUIRED_NODE_FIELDS = ("id", "name", "type", "typeVersion", "position", "parameters")
WEBHOOK_TYPE = "n8n-nodes-base.webhook"


class WorkflowValidationError(ValueError):
    """One or more workflow files are invalid; `problems` lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the workflow files; nothing was deployed:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass
class _Context:
    known: dict[str, set[float]]
    credentials: dict[str, CredentialSpec]
    parameters: dict[str, Parameter]


def load_definitions(directory: Path = DEFINITIONS_DIR) -> list[Definition]:
    """Parse and validate every `*.json` in `directory`; raise listing every problem, or return them all."""
    context = _Context(load_known_node_types(), load_credentials(), load_parameters())
    problems: list[str] = []
    definitions: list[Definition] = []
    files = sorted(directory.glob("*.json"))
    if not files:
        problems.append(f"{directory}: no workflow files (*.json)")
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.name}: top level must be a JSON object (a workflow), not {type(data).__name__}")
            continue
        definition = Definition(path, data)
        problems += _check_workflow(definition, context)
        definitions.append(definition)
    problems += _check_unique(definitions)
    if problems:
        raise WorkflowValidationError(problems)
    return definitions


def _check_workflow(definition: Definition, context: _Context) -> list[str]:
    file, data = definition.path.name, definition.data
    problems = []
    name = data.get("name")
    if not isinstance(name, str) or not name.startswith(MANAGED_PREFIX):
        problems.append(f"{file}: field 'name' must be a string starting with {MANAGED_PREFIX!r} (got {name!r})")
    if not isinstance(data.get("active", False), bool):
        problems.append(f"{file}: field 'active' must be true or false")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return [*problems, f"{file}: field 'nodes' must be a non-empty list"]
    for index, node in enumerate(nodes):
        problems += _check_node(file, index, node, context)
    node_names = [n.get("name") for n in nodes if isinstance(n, dict)]
    problems += [f"{file}: node name {n!r} is used {c} times" for n, c in Counter(node_names).items() if c > 1]
    problems += _check_connections(file, data.get("connections"), set(node_names))
    problems += [
        f"{file}: placeholder %%{p}%% is not declared in workflows/parameters.yaml"
        for p in sorted(placeholders(data) - set(context.parameters))
    ]
    return problems


def _check_node(file: str, index: int, node: Any, context: _Context) -> list[str]:
    if not isinstance(node, dict):
        return [f"{file}: nodes[{index}] must be an object"]
    where = f"{file}: node {node.get('name', f'#{index}')!r}"
    problems = [f"{where}: missing field '{f}'" for f in REQUIRED_NODE_FIELDS if f not in node]
    node_type, version = node.get("type"), node.get("typeVersion")
    if node_type is not None and node_type not in context.known:
        problems.append(f"{where}: field 'type': {node_type!r} is not a node type of the pinned n8n version")
    elif node_type is not None and isinstance(version, int | float) and float(version) not in context.known[node_type]:
        versions = ", ".join(f"{v:g}" for v in sorted(context.known[node_type]))
        problems.append(f"{where}: field 'typeVersion': {version} is not one of {node_type}'s versions ({versions})")
    for cred_type, ref in (node.get("credentials") or {}).items():
        cred_name = ref.get("name") if isinstance(ref, dict) else None
        spec = context.credentials.get(cred_name or "")
        if spec is None:
            problems.append(
                f"{where}: field 'credentials.{cred_type}': {cred_name!r} is not declared in workflows/credentials.yaml"
            )
        elif spec.type != cred_type:
            problems.append(f"{where}: field 'credentials.{cred_type}': {cred_name!r} is declared as type {spec.type}")
    return problems


def _check_connections(file: str, connections: Any, names: set[Any]) -> list[str]:
    if not isinstance(connections, dict):
        return [f"{file}: field 'connections' must be an object"]
    problems = []
    for source, outputs in connections.items():
        if source not in names:
            problems.append(f"{file}: field 'connections': source {source!r} is not a node of this workflow")
        for branch in (outputs or {}).get("main", []) or []:
            for link in branch or []:
                if link.get("node") not in names:
                    problems.append(f"{file}: connection from {source!r} targets unknown node {link.get('node')!r}")
    return problems


def _check_unique(definitions: list[Definition]) -> list[str]:
    problems = []
    by_name = Counter(d.name for d in definitions)
    problems += [f"workflow name {n!r} is used by {c} files" for n, c in by_name.items() if n and c > 1]
    hooks: dict[tuple[str, str], str] = {}
    for definition in definitions:
        for node in definition.data.get("nodes") or []:
            if isinstance(node, dict) and node.get("type") == WEBHOOK_TYPE:
                params = node.get("parameters") or {}
                key = (str(params.get("httpMethod", "GET")), str(params.get("path", "")))
                if key in hooks:
                    problems.append(
                        f"{definition.path.name}: node {node.get('name')!r}: webhook {key[0]} /{key[1]} is also "
                        f"used by {hooks[key]}"
                    )
                hooks[key] = definition.path.name
    return problems


SCHEDULE_TYPE = "n8n-nodes-base.scheduleTrigger"
SCHEDULE_RANGES = {
    "seconds": ("secondsInterval", 59),
    "minutes": ("minutesInterval", 59),
    "hours": ("hoursInterval", 23),
}


def check_resolved(file: str, body: dict[str, Any]) -> list[str]:
    """Problems only visible once placeholders are filled in: schedule intervals n8n would reject at run time
    (it activates such a workflow without complaint, then never fires it)."""
    problems = []
    for node in body.get("nodes") or []:
        if node.get("type") != SCHEDULE_TYPE:
            continue
        for interval in (node.get("parameters") or {}).get("rule", {}).get("interval", []):
            field = interval.get("field", "days")
            if field in SCHEDULE_RANGES:
                key, top = SCHEDULE_RANGES[field]
                value = interval.get(key, 1)
                if not isinstance(value, int) or not 1 <= value <= top:
                    problems.append(
                        f"{file}: node {node.get('name')!r}: field 'rule.interval.{key}': {value!r} is outside "
                        f"1-{top} for unit {field!r} (check the parameter that fills it)"
                    )
    return problems
