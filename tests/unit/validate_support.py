"""Helpers for the validator tests: a minimal valid workflow, and validation of JSON written to a temp dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflows.validate import Report, validate_paths


def node(name: str, node_type: str = "n8n-nodes-base.noOp", version: float = 1, **parameters: Any) -> dict[str, Any]:
    """A node as the n8n editor exports it, without an id (n8n assigns ids on import)."""
    return {"name": name, "type": node_type, "typeVersion": version, "position": [0, 0], "parameters": parameters}


def workflow(*nodes: dict[str, Any], connections: Any = None, name: str = "Kaizenity: test") -> dict[str, Any]:
    return {"name": name, "nodes": list(nodes), "connections": connections or {}, "settings": {}}


def run(tmp_path: Path, *workflows: Any, conventions: bool = False, database_url: str | None = None) -> Report:
    """Write each workflow as wN.json and validate the directory."""
    for index, data in enumerate(workflows):
        (tmp_path / f"w{index}.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return validate_paths([tmp_path], database_url=database_url, conventions=conventions)


def texts(report: Report) -> list[str]:
    return [str(p) for p in report.problems]
