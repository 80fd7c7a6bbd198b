"""How Postgres node SQL becomes statements for PREPARE (no database needed)."""

from __future__ import annotations

from workflows.validation.sql_check import sql_sources
from workflows.validation.sql_text import prepare_statements


def test_statements_are_split_outside_quotes_comments_and_dollar_quotes() -> None:
    query = "SELECT 'a;b', \"c;d\", $$e;f$$, $t$g;h$t$ -- i;j\n; /* k; */ SELECT 2;"
    statements = prepare_statements(query)
    assert [s.text for s in statements] == ["SELECT 'a;b', \"c;d\", $$e;f$$, $t$g;h$t$ -- i;j", "/* k; */ SELECT 2"]


def test_expressions_and_placeholders_become_parameters_and_quoted_ones_replace_the_literal() -> None:
    query = "=INSERT INTO t (a, b, c) VALUES ('{{ $json.day }}'::date, {{ $json.n }}, $1) -- '%%x%%'"
    (statement,) = prepare_statements(query)
    assert statement.text == "INSERT INTO t (a, b, c) VALUES ($2::date, $3, $1) -- '%%x%%'"
    assert statement.expression_params == {2, 3}
    assert statement.skip_reason is None
    assert "{{ $json.day }}" in statement.original


def test_what_cannot_be_prepared_is_skipped_with_the_reason() -> None:
    ddl, identifier, named, dynamic_ddl = prepare_statements(
        'CREATE TABLE x (a int); SELECT * FROM "{{ $json.table }}"; SELECT * FROM t WHERE $1:name = 1; '
        "DROP TABLE {{ $json.t }}"
    )
    assert (ddl.utility, ddl.skip_reason) == (True, None)  # parsed: its syntax is checked
    assert dynamic_ddl.skip_reason == "is a DROP statement with values known only at run time"
    assert identifier.skip_reason == "takes an identifier from an expression"
    assert named.skip_reason is not None
    assert ":name" in named.skip_reason


def test_pg_promise_value_formats_stay_parameters() -> None:
    (statement,) = prepare_statements("SELECT * FROM t WHERE data = $1:json AND id IN ($2:csv)")
    assert statement.text == "SELECT * FROM t WHERE data = $1 AND id IN ($2)"


def test_table_operations_become_a_select_of_their_columns() -> None:
    insert = {
        "name": "Insert",
        "type": "n8n-nodes-base.postgres",
        "typeVersion": 2.6,
        "parameters": {
            "schema": {"__rl": True, "value": "ops", "mode": "list"},
            "table": {"__rl": True, "value": "messages", "mode": "list"},
            "columns": {"mappingMode": "defineBelow", "value": {"body": "={{ $json.text }}", "channel": "telegram"}},
        },
    }
    (source,) = sql_sources("f.json", [insert])
    assert (source.node, source.field) == ("Insert", "parameters.table")
    assert source.statements[0].text == 'SELECT "body", "channel" FROM "ops"."messages"'


def test_disabled_nodes_and_expression_tables_are_not_checked() -> None:
    disabled = {
        "name": "D",
        "type": "n8n-nodes-base.postgres",
        "disabled": True,
        "parameters": {"operation": "executeQuery", "query": "x"},
    }
    dynamic = {"name": "E", "type": "n8n-nodes-base.postgres", "parameters": {"table": "={{ $json.t }}"}}
    assert sql_sources("f.json", [disabled, dynamic]) == []
