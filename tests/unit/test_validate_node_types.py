"""The node types file is what the pinned n8n serves, and its generator refuses an incomplete answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.validation import generate_node_types as generator
from workflows.validation.node_types import load_known_node_types


def test_known_types_are_the_pinned_n8ns_as_served() -> None:
    known = load_known_node_types()
    assert known.n8n_version == generator.pinned_image()[0] == "2.8.4"
    assert len(known.versions) == 811  # GET /types/nodes.json of n8n 2.8.4 (docs: /work/shared/REFERENCE.md)
    assert set(generator.SENTINELS) <= set(known.versions)
    assert "n8n-nodes-base.executeCommand" not in known.versions  # excluded by default in n8n 2.x
    assert "n8n-nodes-base.start" not in known.versions
    assert sum(t.startswith("@n8n/n8n-nodes-langchain.") for t in known.versions) > 100


def descriptions(count: int) -> list[dict[str, object]]:
    found: list[dict[str, object]] = [{"name": name, "version": [1, 2]} for name in generator.SENTINELS]
    return found + [{"name": f"n8n-nodes-base.n{i}", "version": 1} for i in range(count)]


def test_summary_merges_versions_of_each_type() -> None:
    summary = generator.summarise([*descriptions(700), {"name": "n8n-nodes-base.webhook", "version": 2.1}], "2.8.4")
    assert summary["nodeTypes"]["n8n-nodes-base.webhook"] == [1, 2, 2.1]


@pytest.mark.parametrize("described", [descriptions(10), descriptions(700)[1:]])
def test_an_incomplete_answer_fails_loudly(described: list[dict[str, object]]) -> None:
    with pytest.raises(generator.GenerationError, match="node types"):
        generator.summarise(described, "2.8.4")


def test_a_failed_generation_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "known.json"
    monkeypatch.setattr(generator, "KNOWN_TYPES_FILE", target)
    monkeypatch.setattr(generator, "fetch_descriptions", lambda image: descriptions(3))
    assert generator.main(["generate"]) == 1
    assert not target.exists()
