"""Real public n8n exports are valid n8n workflows: no false alarms (tests/fixtures/n8n-exports/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflows.validate import validate_paths

EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "n8n-exports"
FILES = sorted(EXPORTS.glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_real_export_is_accepted(path: Path) -> None:
    report = validate_paths([path], conventions=False)
    assert [str(p) for p in report.problems] == []


def test_fixtures_cover_the_node_families_an_older_validator_refused() -> None:
    nodes = [n for p in FILES for n in json.loads(p.read_text())["nodes"]]
    types = {n["type"] for n in nodes}
    assert any(t.startswith("@n8n/n8n-nodes-langchain.") for t in types)
    assert {"n8n-nodes-base.postgresTool", "n8n-nodes-base.gmailTool", "n8n-nodes-base.html"} <= types
    assert "n8n-nodes-base.whatsAppTrigger" in types
    assert any("id" not in n for n in nodes)


def test_the_export_directory_validates_as_a_whole() -> None:
    report = validate_paths([EXPORTS], conventions=False)
    assert report.problems == []
    assert len(report.definitions) == len(FILES) >= 13
