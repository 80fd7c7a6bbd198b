"""The workflow files and the validator: the shipped set is valid; each kind of mistake is named precisely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from workflows.definitions import DEFINITIONS_DIR, load_parameters, substitute
from workflows.seed import desired_body, resolve_values
from workflows.validate import WorkflowValidationError, check_resolved, load_definitions


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS_DIR, target)
    return target


def edit(directory: Path, name: str, change: Any) -> None:
    path = directory / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def problems(directory: Path) -> list[str]:
    with pytest.raises(WorkflowValidationError) as failure:
        load_definitions(directory)
    return failure.value.problems


def test_shipped_workflows_are_valid_and_resolve_within_n8ns_ranges() -> None:
    definitions = load_definitions()
    assert {d.path.stem for d in definitions} == {
        "messenger-inbound", "notification-dispatch", "coda-sync", "coda-push", "heartbeat", "analytics-rollup",
        "error-handler",
    }  # fmt: skip
    values = resolve_values({k: "x" for k, p in load_parameters().items() if p.default is None})
    for definition in definitions:
        assert check_resolved(definition.path.name, desired_body(definition, values, {})) == []


def test_every_mistake_is_reported_at_once_with_file_node_and_field(copy: Path) -> None:
    edit(copy, "heartbeat.json", lambda d: d["nodes"][1].update(type="n8n-nodes-base.nope"))
    edit(copy, "analytics-rollup.json", lambda d: d["nodes"][1].update(typeVersion=9))
    edit(copy, "notification-dispatch.json", lambda d: d["nodes"][1]["credentials"]["postgres"].update(name="Other"))
    edit(copy, "coda-sync.json", lambda d: d["connections"].update(Ghost={"main": [[]]}))
    (copy / "broken.json").write_text("{not json")
    found = problems(copy)
    text = "\n".join(found)
    assert "heartbeat.json: node 'Write heartbeat': field 'type'" in text
    assert "analytics-rollup.json: node 'Ensure partitions': field 'typeVersion': 9" in text
    assert "notification-dispatch.json: node 'Claim due notifications': field 'credentials.postgres': 'Other'" in text
    assert "coda-sync.json: field 'connections': source 'Ghost'" in text
    assert "broken.json: not valid JSON (line 1" in text
    assert len(found) == 5


def test_duplicate_names_webhook_paths_and_undeclared_placeholders(copy: Path) -> None:
    shutil.copy(copy / "messenger-inbound.json", copy / "messenger-inbound-copy.json")
    edit(copy, "heartbeat.json", lambda d: d["nodes"][1]["parameters"].update(query="SELECT '%%undeclared%%'"))
    text = "\n".join(problems(copy))
    assert "workflow name 'Kaizenity: messenger inbound (Telegram)' is used by 2 files" in text
    assert "webhook POST /telegram/%%telegramWebhookPathToken%% is also used by" in text
    assert "heartbeat.json: placeholder %%undeclared%% is not declared" in text


def test_unmanaged_names_are_refused(copy: Path) -> None:
    edit(copy, "heartbeat.json", lambda d: d.update(name="heartbeat"))
    assert any("must be a string starting with 'Kaizenity: '" in p for p in problems(copy))


def test_schedule_out_of_n8ns_range_is_caught_before_deployment() -> None:
    (heartbeat,) = [d for d in load_definitions() if d.path.stem == "heartbeat"]
    values = resolve_values({k: "x" for k, p in load_parameters().items() if p.default is None})
    body = desired_body(heartbeat, {**values, "heartbeatUnit": "seconds", "heartbeatEvery": "60"}, {})
    (problem,) = check_resolved("heartbeat.json", body)
    assert "secondsInterval': 60 is outside 1-59" in problem


def test_placeholders_substitute_numbers_as_numbers() -> None:
    assert substitute({"a": "%%n%%", "b": "x-%%n%%"}, {"n": "5"}) == {"a": 5, "b": "x-5"}
