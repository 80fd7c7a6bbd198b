"""A problem found in a workflow file: which file, node and field, and which section it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Section(StrEnum):
    """n8n validity (the pinned n8n refuses it, or it fails at run time) vs this project's conventions."""

    N8N = "n8n validity"
    CONVENTIONS = "project conventions"


@dataclass(frozen=True)
class Problem:
    """One finding. `str()` reads `file: node 'X': field 'a.b': what is wrong (and the fix)`."""

    file: str
    message: str
    node: str | None = None
    field: str | None = None
    section: Section = Section.N8N

    def __str__(self) -> str:
        parts = [self.file]
        if self.node is not None:
            parts.append(f"node {self.node!r}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join([*parts, self.message])


@dataclass(frozen=True)
class Notice:
    """A check that could not run (no database, no `node` binary): said once, never a failure."""

    message: str

    def __str__(self) -> str:
        return self.message


def node_label(node: Any, index: int) -> str:
    """How a node is named in problems: its name, or `#index` when it has no usable name."""
    if isinstance(node, dict) and isinstance(node.get("name"), str) and node["name"]:
        return str(node["name"])
    return f"#{index}"


def type_name(value: Any) -> str:
    """JSON's name for the type of `value` (problems speak JSON, not Python)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    if isinstance(value, bool):
        return names[bool]
    if isinstance(value, int | float):
        return "a number"
    return names.get(type(value), type(value).__name__)


def as_list(value: Any) -> list[Any]:
    """`value` if it is a list, else empty (shape.py reports the wrong type once; other checks skip it)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is an object, else empty (shape.py reports the wrong type once; other checks skip it)."""
    return value if isinstance(value, dict) else {}
