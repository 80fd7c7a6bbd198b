"""SQL of Postgres nodes turned into statements PostgreSQL can prepare, without a database.

What n8n sends (n8n 2.8.4 `n8n-nodes-base/dist/nodes/Postgres/v2/actions/database/executeQuery.operation.js`):
every `{{ ... }}` in the query is evaluated and pasted into the text (with or without a leading `=`), and
`options.queryReplacement` values fill `$1`, `$2`, ... through pg-promise's formatting, which pastes each as an
escaped literal (`$1:name` / `$1~` paste an identifier, `$1:raw` / `$1^` raw text). Several statements may be
sent at once.

Strategy for the check: the query is split into statements with PostgreSQL's lexical rules (quotes, `E''`,
quoted identifiers, dollar quoting, comments). Every `{{ }}` and `%%placeholder%%` becomes a fresh parameter
`$N`: standing alone it is a value; inside a quoted literal the whole literal becomes `$N` (so `'{{ x }}'::date`
stays a cast of an unknown value instead of failing on the text). `$1`-style replacements stay parameters, whose
types PostgreSQL infers, as it infers the type of the literal pg-promise pastes. A statement that takes an
identifier or raw text from an expression (`$1:name`, an expression inside "...") cannot be prepared and is
reported as not checked, never as a problem. Utility statements (DDL, `DO`, `CALL`) go through the protocol's
Parse too, which checks their syntax only (their names are resolved when they run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PREPARABLE = {"select", "insert", "update", "delete", "with", "values", "table", "merge"}
EXPRESSION = re.compile(r"\{\{.*?\}\}|%%[A-Za-z][A-Za-z0-9]*%%", re.DOTALL)
MARKER = re.compile(r"\x01(\d+)\x02")
PARAM = re.compile(r"\$(\d+)(:name|~|:alias|:raw|\^|:value|#|:json|:csv|:list)?")
UNSAFE_FORMATS = {":name", "~", ":alias", ":raw", "^", ":value", "#"}
DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass
class Statement:
    """One statement ready for PREPARE, or the reason it cannot be checked."""

    number: int
    text: str
    original: str
    skip_reason: str | None = None
    expression_params: set[int] = field(default_factory=set)
    utility: bool = False  # DDL, DO, CALL...: the protocol's Parse checks only their syntax


def _tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: 'str', 'ident', 'dollar', 'comment', 'semi' and 'code' (everything else)."""
    tokens: list[tuple[str, str]] = []
    i, code_start = 0, 0

    def flush(end: int) -> None:
        if end > code_start:
            tokens.append(("code", sql[code_start:end]))

    while i < len(sql):
        kind, end = _token_at(sql, i)
        if kind is None:
            i += 1
            continue
        flush(i)
        tokens.append((kind, sql[i:end]))
        i = code_start = end
    flush(len(sql))
    return tokens


def _token_at(sql: str, i: int) -> tuple[str | None, int]:  # noqa: PLR0911 - one return per token kind
    char, rest = sql[i], sql[i : i + 2]
    if rest == "--":
        end = sql.find("\n", i)
        return "comment", len(sql) if end < 0 else end
    if rest == "/*":
        return "comment", _block_comment_end(sql, i)
    if char == ";":
        return "semi", i + 1
    if char == "'" or (char in "eE" and sql[i + 1 : i + 2] == "'" and (i == 0 or not _word(sql[i - 1]))):
        return "str", _quoted_end(sql, i + (1 if char != "'" else 0), "'", backslash=char != "'")
    if char == '"':
        return "ident", _quoted_end(sql, i, '"', backslash=False)
    if char == "$" and (i == 0 or not _word(sql[i - 1])):
        match = DOLLAR.match(sql, i)
        if match:
            close = sql.find(match[0], match.end())
            return "dollar", len(sql) if close < 0 else close + len(match[0])
    return None, i


def _word(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _quoted_end(sql: str, start: int, quote: str, *, backslash: bool) -> int:
    i = start + 1
    while i < len(sql):
        if backslash and sql[i] == "\\":
            i += 2
            continue
        if sql[i] == quote:
            if sql[i + 1 : i + 2] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _block_comment_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def prepare_statements(query: str) -> list[Statement]:
    """The statements of a Postgres node query, each rewritten for PREPARE (see the module docstring)."""
    query = query.removeprefix("=")
    marked = EXPRESSION.sub(lambda m: f"\x01{m.start()}\x02", query)
    statements: list[list[tuple[str, str]]] = [[]]
    for token in _tokens(marked):
        if token[0] == "semi":
            statements.append([])
        else:
            statements[-1].append(token)
    result: list[Statement] = []
    for tokens in statements:
        if all(kind == "comment" or not text.strip() for kind, text in tokens):
            continue
        result.append(_rewrite(len(result) + 1, tokens, query))
    return result


def _rewrite(number: int, tokens: list[tuple[str, str]], query: str) -> Statement:
    original = "".join(MARKER.sub(lambda m: _expression_at(query, int(m[1])), t) for _, t in tokens).strip()
    params = {int(n) for kind, text in tokens if kind == "code" for n, _ in PARAM.findall(text)}
    next_param = max(params, default=0) + 1
    pieces: list[str] = []
    expression_params: set[int] = set()
    skip: str | None = None
    for kind, raw in tokens:
        text = raw
        if kind == "code":
            for _, fmt in PARAM.findall(text):
                if fmt in UNSAFE_FORMATS:
                    skip = f"uses pg-promise's {fmt} format (an identifier or raw text known only at run time)"
            text = PARAM.sub(lambda m: f"${m[1]}", text)
        if MARKER.search(text) and kind in ("comment", "dollar"):
            text = MARKER.sub(lambda m: _expression_at(query, int(m[1])), text)  # pasted as text there
        elif MARKER.search(text):
            if kind == "ident":
                skip = "takes an identifier from an expression"
            elif kind == "str":
                text = f"${next_param}"
                expression_params.add(next_param)
                next_param += 1
            elif kind == "code":
                while MARKER.search(text):
                    text = MARKER.sub(f"${next_param}", text, count=1)
                    expression_params.add(next_param)
                    next_param += 1
        pieces.append(text)
    text = "".join(pieces).strip()
    code = "".join(t for k, t in tokens if k != "comment")
    first = re.match(r"\s*\(*\s*([A-Za-z]+)", code)
    utility = first is None or first[1].lower() not in PREPARABLE
    if skip is None and utility and (expression_params or params):
        skip = f"is a {first[1].upper() if first else 'utility'} statement with values known only at run time"
    return Statement(number, text, original, skip, expression_params, utility)


def _expression_at(query: str, start: int) -> str:
    match = EXPRESSION.match(query, start)
    return match[0] if match else ""
