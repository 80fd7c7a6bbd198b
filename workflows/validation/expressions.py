"""Expressions that name another node must name a node of the same workflow.

n8n resolves `$('Name')`, `$node["Name"]` / `$node.Name` and `$items("Name")` at run time
(`packages/workflow/src/workflow-data-proxy.ts`); a name that is not in the workflow fails the execution with
"Referenced node doesn't exist" only when that node runs. Expressions are parameter strings starting with `=`
(n8n evaluates only their `{{ }}` parts; a jQuery `$('title')` in a request body is
text); the JavaScript of Code nodes uses the same functions, so it is scanned too. Only
literal names can be checked; a name built at run time (`$(name)`) is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from workflows.validation.javascript import CODE_TYPES
from workflows.validation.problems import Problem, node_label

_STRING = r"""(?:'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\$]|\\.)*)`)"""
REFERENCES = [
    re.compile(r"\$\(\s*" + _STRING + r"\s*\)"),
    re.compile(r"\$items\(\s*" + _STRING),
    re.compile(r"\$node\[\s*" + _STRING + r"\s*\]"),
    re.compile(r"\$node\.([A-Za-z_$][\w$]*)"),
]


def referenced_names(text: str) -> list[str]:
    """Literal node names `text` refers to, with JavaScript string escapes undone."""
    names = []
    for pattern in REFERENCES:
        for match in pattern.finditer(text):
            raw = next(g for g in match.groups() if g is not None)
            names.append(re.sub(r"\\(.)", r"\1", raw))
    return names


TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _listing(names: set[str]) -> str:
    return f"; nodes: {', '.join(sorted(names))}" if 0 < len(names) <= 12 else ""


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def check_references(file: str, nodes: list[Any]) -> list[Problem]:
    """Every literal node name in an expression (or Code node) is a node of this workflow."""
    names = {n["name"] for n in nodes if isinstance(n, dict) and isinstance(n.get("name"), str)}
    problems = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        is_code = str(node.get("type")) in CODE_TYPES
        for path, text in _strings(node.get("parameters"), "parameters"):
            if is_code and path.endswith("Code"):
                scanned = text
            elif text.startswith("="):
                scanned = "\n".join(TEMPLATE.findall(text))  # only {{ }} is evaluated; the rest is text
            else:
                continue
            for name in referenced_names(scanned):
                if name not in names:
                    problems.append(
                        Problem(
                            file,
                            f"refers to node {name!r}, which is not in this workflow (n8n fails the execution with "
                            f'"Referenced node doesn\'t exist"); nodes: {", ".join(sorted(names)) or "none"}',
                            node_label(node, index),
                            path,
                        )
                    )
    return problems
