"""`kaizenity workflows validate [PATH...]`: files and directories, missing paths named, two sections."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.unit.validate_support import node, workflow
from workflows.cli import workflows
from workflows.definitions import DEFINITIONS_DIR


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(workflows, ["validate", *args], env={"KAIZENITY_VALIDATE_DATABASE_URL": ""})
    return result.exit_code, result.output


def test_default_is_the_shipped_definitions_and_they_are_valid() -> None:
    code, output = invoke()
    assert code == 0, output
    assert "7 workflow file(s) valid (n8n validity, project conventions)" in output
    assert "note: SQL of Postgres nodes not checked (13 statement(s)): no database" in output


def test_a_file_path_is_accepted() -> None:
    code, output = invoke(str(DEFINITIONS_DIR / "heartbeat.json"))
    assert code == 0, output
    assert "1 workflow file(s) valid" in output


def test_files_and_directories_together_and_a_missing_path_is_named(tmp_path: Path) -> None:
    code, output = invoke(str(DEFINITIONS_DIR / "heartbeat.json"), str(tmp_path / "nope"), str(tmp_path))
    assert code == 1
    assert f"  - {tmp_path / 'nope'}: no such file or directory" in output
    assert f"  - {tmp_path}: no workflow files (*.json) in this directory" in output


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """An n8n-valid export that breaks the project conventions, and a file n8n would refuse."""
    export = workflow(node("A"), name="My export")
    export["nodes"][0]["credentials"] = {"postgres": {"id": "1", "name": "Somebody's database"}}
    (tmp_path / "export.json").write_text(json.dumps(export))
    (tmp_path / "broken.json").write_text(json.dumps(workflow(node("B", "n8n-nodes-base.nope"))))
    return tmp_path


def test_n8n_validity_and_project_conventions_are_separate_sections(mixed: Path) -> None:
    code, output = invoke(str(mixed))
    assert code == 1
    n8n_part, conventions_part = output.split("project conventions — ")
    assert "n8n validity — 1 problem(s):" in n8n_part
    assert "broken.json: node 'B': field 'type': 'n8n-nodes-base.nope' is not a node type of n8n 2.8.4" in n8n_part
    assert conventions_part.startswith("2 problem(s):")
    assert "export.json: field 'name': must be a string starting with 'Kaizenity: ' (got 'My export')" in output
    assert "export.json: node 'A': field 'credentials.postgres': \"Somebody's database\" is not declared" in output


def test_n8n_only_leaves_the_conventions_out(mixed: Path) -> None:
    (mixed / "broken.json").unlink()
    code, output = invoke("--n8n-only", str(mixed))
    assert code == 0, output
    assert "1 workflow file(s) valid (n8n validity): export.json" in output


def test_shipped_definitions_copied_elsewhere_stay_valid(tmp_path: Path) -> None:
    shutil.copytree(DEFINITIONS_DIR, tmp_path / "d")
    assert invoke(str(tmp_path / "d"))[0] == 0
