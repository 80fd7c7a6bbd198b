"""Every SQL statement of Postgres nodes prepared on a real PostgreSQL that carries the migrated schema.

PREPARE (the protocol's Parse, on the unnamed statement) runs PostgreSQL's parser, name resolution and type checking
without executing anything: a missing table, column or function, a wrong type or a syntax error shows up exactly as
n8n would meet it at run time. Utility statements (DDL, `DO`, `CALL`) are parsed, which checks only their syntax;
that is said in a note. Operations other than `executeQuery` (insert, upsert, update, select, deleteTable) name a
schema, a table and columns: a `SELECT <columns> FROM <schema>.<table>` is prepared for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from psycopg.sql import SQL, Identifier

from workflows.validation.problems import Notice, Problem, as_dict, node_label
from workflows.validation.sql_text import Statement, prepare_statements

POSTGRES_TYPES = {"n8n-nodes-base.postgres", "n8n-nodes-base.postgresTool"}
TEXT_OID = 25
INDETERMINATE = re.compile(r"could not determine data type of parameter \$(\d+)")


@dataclass(frozen=True)
class SqlSource:
    file: str
    node: str
    field: str
    statements: list[Statement]


def sql_sources(file: str, nodes: list[Any]) -> list[SqlSource]:
    """The statements every Postgres node of a workflow would send (literal parts only)."""
    sources = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or str(node.get("type")) not in POSTGRES_TYPES or node.get("disabled") is True:
            continue
        params = as_dict(node.get("parameters"))
        label, operation = node_label(node, index), params.get("operation", "insert")
        if operation == "executeQuery":
            if isinstance(params.get("query"), str):
                sources.append(SqlSource(file, label, "parameters.query", prepare_statements(params["query"])))
        elif isinstance(operation, str):
            table_sql = _table_statement(params)
            if table_sql is not None:
                sources.append(SqlSource(file, label, "parameters.table", [Statement(1, table_sql, table_sql)]))
    return sources


def _locator(value: Any) -> str | None:
    """A resource locator's literal value (`{"__rl": true, "value": "x"}` or a plain string)."""
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) and value and not value.startswith("=") else None


def _columns(params: dict[str, Any]) -> list[str]:
    found: list[Any] = []
    columns = params.get("columns")
    if isinstance(columns, dict):
        found += list((columns.get("value") or {}).keys()) if isinstance(columns.get("value"), dict) else []
        found += columns.get("matchingColumns") or [] if isinstance(columns.get("matchingColumns"), list) else []
    elif isinstance(columns, str):
        found += [c.strip() for c in columns.split(",")]
    for key in ("where", "sort", "valuesToSend"):
        block = params.get(key)
        values = block.get("values") if isinstance(block, dict) else None
        found += [v.get("column") for v in values or [] if isinstance(v, dict)]
    if isinstance(params.get("columnToMatchOn"), str):
        found.append(params["columnToMatchOn"])
    return sorted({c for c in found if isinstance(c, str) and c and not c.startswith("=")})


def _table_statement(params: dict[str, Any]) -> str | None:
    schema, table = _locator(params.get("schema")) or "public", _locator(params.get("table"))
    if table is None:
        return None
    columns = SQL(", ").join(Identifier(c) for c in _columns(params))
    statement = SQL("SELECT {} FROM {}").format(columns, Identifier(schema, table))
    return statement.as_string(None)


def check_sql(sources: list[SqlSource], database_url: str | None) -> tuple[list[Problem], list[Notice]]:
    """Prepare every statement; problems for those PostgreSQL refuses, notices for what was not checked."""
    count = sum(len(s.statements) for s in sources)
    if not count:
        return [], []
    if not database_url:
        return [], [
            Notice(
                f"SQL of Postgres nodes not checked ({count} statement(s)): no database. Give --database-url or "
                "KAIZENITY_VALIDATE_DATABASE_URL (a database with the migrations applied, e.g. `make up`'s)"
            )
        ]
    problems, notices = [], []
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET statement_timeout = '10s'")
        for source in sources:
            for statement in source.statements:
                where = f"{source.file}: node {source.node!r}: statement {statement.number}"
                if statement.skip_reason:
                    notices.append(Notice(f"{where} not checked: it {statement.skip_reason}"))
                    continue
                error = prepare(conn.pgconn, statement)
                if statement.utility and (not error or "(SQLSTATE 42601)" not in error):
                    notices.append(
                        Notice(f"{where}: syntax checked only (a utility statement resolves names when run)")
                    )
                elif error and "(SQLSTATE 42601)" in error and statement.expression_params:
                    notices.append(Notice(f"{where} not checked: an expression stands where SQL expects a name"))
                elif error:
                    message = f"statement {statement.number} fails on the migrated schema: {error}"
                    problems.append(Problem(source.file, f"{message} in: {_short(statement.original)}", source.node,
                                            source.field))  # fmt: skip
    return problems, notices


def prepare(pgconn: pq.abc.PGconn, statement: Statement) -> str | None:
    """PostgreSQL's error for PREPARE of `statement` (unknown-typed parameters retried as text), or None."""
    types: dict[int, int] = {}
    for _ in range(32):
        oids = [types.get(n, 0) for n in range(1, max(types, default=0) + 1)]
        result = pgconn.prepare(b"", statement.text.encode(), oids or None)
        if result.status == pq.ExecStatus.COMMAND_OK:
            return None
        message = (result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode(errors="replace")
        indeterminate = INDETERMINATE.search(message)
        if indeterminate and int(indeterminate[1]) not in types:
            types[int(indeterminate[1])] = TEXT_OID
            continue
        code = (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        return f"{message} (SQLSTATE {code})"
    return "too many parameters of unknown type"


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 160 else flat[:157] + "..."
