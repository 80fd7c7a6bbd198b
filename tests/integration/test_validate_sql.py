"""Postgres node SQL prepared against the migrated schema of a real PostgreSQL (the session environment's).

What it proves: the shipped workflows' statements all prepare; a table or column the migrations never create, a
missing function and a syntax error are refused with file, node and field named; expressions and `$1` parameters
do not cause false alarms; `kaizenity workflows validate --database-url` runs the check (as `make lint` does
when KAIZENITY_VALIDATE_DATABASE_URL is set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from infra.local_endpoints import LocalEndpoints
from workflows.cli import workflows
from workflows.definitions import DEFINITIONS_DIR
from workflows.validate import validate_paths

pytestmark = pytest.mark.integration


def postgres(name: str, query: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "n8n-nodes-base.postgres",
        "typeVersion": 2.6,
        "position": [0, 0],
        "parameters": {"operation": "executeQuery", "query": query, "options": {}, **extra},
    }


def check(tmp_path: Path, url: str, *nodes: dict[str, Any]) -> list[str]:
    (tmp_path / "w.json").write_text(json.dumps({"name": "t", "nodes": list(nodes), "connections": {}}))
    return [str(p) for p in validate_paths([tmp_path], database_url=url, conventions=False).problems]


@pytest.fixture
def url(kaizenity_stack: LocalEndpoints) -> str:
    assert kaizenity_stack.database_url
    return kaizenity_stack.database_url


def test_every_shipped_statement_prepares_on_the_migrated_schema(url: str) -> None:
    report = validate_paths([DEFINITIONS_DIR], database_url=url)
    assert [str(p) for p in report.problems] == []
    assert not [n for n in report.notices if "SQL" in str(n)]


def test_missing_table_column_function_and_syntax_errors_are_named(tmp_path: Path, url: str) -> None:
    found = check(
        tmp_path,
        url,
        postgres("No table", "SELECT id FROM ops.nope"),
        postgres("No column", "UPDATE ops.notifications SET nope = 1 WHERE id = $1", options={"queryReplacement": "1"}),
        postgres("No function", "SELECT analytics.nope()"),
        postgres("Typo", "SELEC 1"),
    )
    assert len(found) == 4
    assert found[0].startswith("w.json: node 'No table': field 'parameters.query': statement 1 fails on the migrated")
    assert 'relation "ops.nope" does not exist (SQLSTATE 42P01)' in found[0]
    assert 'column "nope" of relation "notifications" does not exist' in found[1]
    assert "function analytics.nope() does not exist" in found[2]
    assert 'syntax error at or near "SELEC" (SQLSTATE 42601)' in found[3]


def test_second_statement_of_a_query_is_checked_too(tmp_path: Path, url: str) -> None:
    (problem,) = check(tmp_path, url, postgres("Two", "SELECT 1 FROM ops.messages; SELECT missing FROM ops.messages"))
    assert 'statement 2 fails on the migrated schema: column "missing" does not exist' in problem


def test_expressions_parameters_and_literals_are_no_false_alarm(tmp_path: Path, url: str) -> None:
    query = (
        "=SELECT id FROM ops.notifications WHERE created_at > '{{ $json.since }}'::timestamptz "
        "AND channel = {{ $json.channel }} AND id = $1 AND status = '%%anything%%' LIMIT {{ $json.n }}"
    )
    untyped = "SELECT '{{ $json.a }}' AS a, $1 AS b"
    assert check(tmp_path, url, postgres("Expr", query), postgres("Untyped", untyped)) == []


def test_insert_operation_with_a_column_the_migrations_never_create(tmp_path: Path, url: str) -> None:
    insert = postgres("Insert", "")
    insert["parameters"] = {
        "schema": {"__rl": True, "value": "ops", "mode": "list"},
        "table": {"__rl": True, "value": "messages", "mode": "list"},
        "columns": {"mappingMode": "defineBelow", "value": {"body": "={{ $json.text }}", "colour": "red"}},
    }
    (problem,) = check(tmp_path, url, insert)
    assert problem.startswith("w.json: node 'Insert': field 'parameters.table': statement 1 fails")
    assert 'column "colour" does not exist' in problem


def test_cli_prepares_sql_with_database_url(tmp_path: Path, url: str) -> None:
    (tmp_path / "w.json").write_text(
        json.dumps({"name": "Kaizenity: t", "nodes": [postgres("Bad", "SELECT 1 FROM ops.nope")], "connections": {}})
    )
    result = CliRunner().invoke(workflows, ["validate", "--n8n-only", "--database-url", url, str(tmp_path)])
    assert result.exit_code == 1
    assert 'relation "ops.nope" does not exist' in result.output
    assert url.split("@", maxsplit=1)[0] not in result.output  # the URL (with its password) is never printed
