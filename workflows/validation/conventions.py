"""This project's conventions for its own workflows (not n8n's rules), reported in their own section.

- the name starts with `Kaizenity: `: the seeder recognises managed workflows by it and never touches others;
- every credential a node uses is declared in workflows/credentials.yaml, with the type the node asks for;
- every `%%placeholder%%` is declared in workflows/parameters.yaml;
- a workflow name is used by one file only (the seeder matches by name), and a workflow has at least one node;
- a node with `onError: continueErrorOutput` leads its success output only into an If or Switch node that checks
  the item is the node's own answer: n8n 2.8.4 sends a node's *input* items to the success output when the node
  throws (n8n-core dist/execution-engine/workflow-execute.js: `nodeSuccessData = [executionData.data.main[0]]`;
  n8n-io/n8n#11202, #36095). messenger-inbound acknowledged updates it never stored that way when a worker shut
  down under a running execution (its credentials could no longer be read).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from workflows.definitions import MANAGED_PREFIX, CredentialSpec, Parameter, placeholders
from workflows.validation.problems import Problem, Section, as_dict, as_list, node_label


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
    problems += _check_success_gates(file, data)
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


SUCCESS_GATE_NAMES = ("n8n-nodes-base.if", "n8n-nodes-base.switch")  # a tuple: `in` compares, never hashes


def _check_success_gates(file: str, data: dict[str, Any]) -> list[Problem]:
    """Every continueErrorOutput node's success output goes only into If/Switch nodes (see the module doc)."""
    nodes = as_list(data.get("nodes"))
    gates = {
        n["name"]
        for n in nodes
        if isinstance(n, dict) and isinstance(n.get("name"), str) and n.get("type") in SUCCESS_GATE_NAMES
    }
    connections = as_dict(data.get("connections"))
    problems = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or node.get("onError") != "continueErrorOutput":
            continue
        outputs = as_list(as_dict(connections.get(str(node.get("name")))).get("main"))
        links = as_list(outputs[0]) if outputs else []
        ungated = sorted({str(link.get("node")) for link in links if isinstance(link, dict)} - gates)
        if ungated:
            problems.append(
                _problem(
                    file,
                    f"its success output leads to {', '.join(map(repr, ungated))}, not to an If or Switch node: "
                    "with onError continueErrorOutput n8n 2.8.4 sends the node's input items to the success output "
                    "when the node throws. Fix: put an If/Switch between them that passes only the node's own answer "
                    "(e.g. a field only that answer has) and sends anything else to the error handling",
                    node_label(node, index),
                    "connections",
                )
            )
    return problems


def check_unique_names(named: list[tuple[str, Any]]) -> list[Problem]:
    """(file, workflow name) pairs: a name used by two files would make the seeder overwrite one with the other."""
    counts = Counter(name for _, name in named if isinstance(name, str) and name)
    return [
        _problem(file, f"workflow name {name!r} is used by {counts[name]} files")
        for file, name in named
        if isinstance(name, str) and counts[name] > 1
    ]
