"""The shape of a workflow export as n8n reads it: every malformed part is a named problem, never a traceback.

What n8n requires (n8n-workflow `INode`/`IConnections`, `packages/workflow/src/interfaces.ts`): a node has a
`name`, `type`, `typeVersion`, `position` ([x, y]) and `parameters` (an object). The node `id` is optional: n8n
assigns a UUID to every node without one when a workflow is imported, created through the public API or
saved (n8n 2.8.4 `dist/workflow-helpers.js` `addNodeIds`, also called by the public API's workflows handler), so
exports from older versions and hand-written files without ids are valid. Connections map a source node name to
connection types (`main`, `ai_tool`, `ai_languageModel`, ...), each a list of outputs; an output is a list of
`{node, type, index}` (an output may be `null` or empty: nothing connected there).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from workflows.validation.problems import Problem, node_label, type_name

REQUIRED_NODE_FIELDS = ("name", "type", "typeVersion", "position", "parameters")


def check_workflow(file: str, data: dict[str, Any]) -> list[Problem]:
    """Problems with the workflow's top-level fields, its nodes and its connections."""
    problems: list[Problem] = []
    name = data.get("name")
    if name is not None and not isinstance(name, str):  # template exports have none: the editor names them
        problems.append(Problem(file, f"must be a string, not {_show(name)}", field="name"))
    for key, expected in (("settings", dict), ("pinData", dict), ("active", bool)):
        if data.get(key) is not None and not isinstance(data[key], expected):
            problems.append(Problem(file, f"must be {type_name(expected())}, not {type_name(data[key])}", field=key))
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        return [*problems, Problem(file, f"must be a list of nodes, not {type_name(nodes)}", field="nodes")]
    for index, node in enumerate(nodes):
        problems += check_node(file, index, node)
    names = [n["name"] for n in nodes if isinstance(n, dict) and isinstance(n.get("name"), str)]
    problems += [
        Problem(file, f"node name {n!r} is used {c} times; n8n addresses nodes by name", field="nodes")
        for n, c in Counter(names).items()
        if c > 1
    ]
    ids = [n["id"] for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str) and n["id"]]
    problems += [
        Problem(file, f"node id {i!r} is used {c} times; remove the ids (n8n assigns new ones)", field="nodes")
        for i, c in Counter(ids).items()
        if c > 1
    ]
    return problems + check_connections(file, data.get("connections"), set(names))


def check_node(file: str, index: int, node: Any) -> list[Problem]:
    """Problems with one node's own fields (not its type, version or parameters' meaning)."""
    if not isinstance(node, dict):
        return [Problem(file, f"must be an object, not {type_name(node)}", field=f"nodes[{index}]")]
    label = node_label(node, index)
    problems = [Problem(file, "missing (n8n requires it)", label, f) for f in REQUIRED_NODE_FIELDS if f not in node]
    checks: list[tuple[str, bool, str]] = [
        ("name", isinstance(node.get("name"), str) and bool(node.get("name")), "a non-empty string"),
        ("type", isinstance(node.get("type"), str), "a string such as 'n8n-nodes-base.webhook'"),
        ("typeVersion", _is_number(node.get("typeVersion")), "a number"),
        ("position", _is_position(node.get("position")), "[x, y] (two numbers)"),
        ("parameters", isinstance(node.get("parameters"), dict), "an object"),
        ("id", isinstance(node.get("id"), str), "a string (or left out)"),
        ("credentials", isinstance(node.get("credentials"), dict), "an object {credentialType: {id, name}}"),
        ("disabled", isinstance(node.get("disabled"), bool), "true or false"),
        ("webhookId", isinstance(node.get("webhookId"), str), "a string"),
    ]
    for key, ok, expected in checks:
        if key in node and not ok:
            problems.append(Problem(file, f"must be {expected}, not {_show(node[key])}", label, key))
    if isinstance(node.get("credentials"), dict):
        for cred_type, ref in node["credentials"].items():
            if isinstance(ref, str):
                continue  # the pre-1.0 form {type: name}: n8n looks the credential up by name on import
            if not isinstance(ref, dict) or not isinstance(ref.get("name", ""), str):
                problems.append(
                    Problem(
                        file,
                        f"must be an object {{id, name}} (or a name), not {_show(ref)}",
                        label,
                        f"credentials.{cred_type}",
                    )
                )
    return problems


def check_connections(file: str, connections: Any, names: set[str]) -> list[Problem]:
    """Every connection names existing nodes and has n8n's nesting: type -> outputs -> links."""
    if not isinstance(connections, dict):
        return [Problem(file, f"must be an object, not {type_name(connections)}", field="connections")]
    problems: list[Problem] = []
    for source, by_type in connections.items():
        where = f"connections.{source}"
        if source not in names:
            problems.append(Problem(file, f"source {source!r} is not a node of this workflow", field="connections"))
        if not isinstance(by_type, dict):
            problems.append(Problem(file, f"must be an object {{main: [...]}}, not {type_name(by_type)}", field=where))
            continue
        for conn_type, outputs in by_type.items():
            problems += _check_outputs(file, f"{where}.{conn_type}", outputs, source, names)
    return problems


def _check_outputs(file: str, where: str, outputs: Any, source: str, names: set[str]) -> list[Problem]:
    if not isinstance(outputs, list):
        return [Problem(file, f"must be a list of outputs, not {type_name(outputs)}", field=where)]
    problems: list[Problem] = []
    for out_index, links in enumerate(outputs):
        if links is None:
            continue  # an unconnected output: n8n writes null or [] there
        if not isinstance(links, list):
            problems.append(
                Problem(file, f"must be a list of links, not {type_name(links)}", field=f"{where}[{out_index}]")
            )
            continue
        for link_index, link in enumerate(links):
            field = f"{where}[{out_index}][{link_index}]"
            if not isinstance(link, dict):
                problems.append(
                    Problem(file, f"must be an object {{node, type, index}}, not {_show(link)}", field=field)
                )
            elif not isinstance(link.get("node"), str) or link["node"] not in names:
                problems.append(
                    Problem(file, f"connection from {source!r} targets unknown node {link.get('node')!r}", field=field)
                )
            elif not isinstance(link.get("index", 0), int) or isinstance(link.get("index"), bool):
                problems.append(Problem(file, f"'index' must be an integer, not {_show(link['index'])}", field=field))
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_position(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type_name(value)} {text if len(text) <= 60 else text[:57] + '...'}"
