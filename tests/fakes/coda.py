"""Coda API v1 (https://coda.io/apis/v1), following its published contract (OpenAPI v1, https://coda.io/apis/v1/openapi.yaml,
rendered at https://coda.io/developers/apis/v1). Each rule below names the part of the spec it follows.

- Errors are ``{statusCode, statusMessage, message}`` (every operation's 401/403/404/429 responses).
- List endpoints: ``items``, ``nextPageToken``/``nextPageLink``; "any other parameters provided alongside a pageToken
  will be ignored" (section "List Endpoints"): the page token here encodes the whole query.
- listRows: ``valueFormat`` simple|simpleWithArrays|rich; rich text is "fully escaped with triple-ticks" and
  lookups/people/currency are JSON-LD objects (section "Value Formats"); ``useColumnNames`` keys values by names
  ("discouraged as it is fragile"), otherwise by column ids; the last page carries ``nextSyncToken``, and a
  ``syncToken`` returns only rows changed since it was issued. The spec documents no tombstones: a row deleted in
  Coda is simply absent, so deletions are visible only to a complete listing.
- upsertRows: ``POST /docs/{docId}/tables/{tableIdOrName}/rows`` ``{rows: [{cells: [{column, value}]}], keyColumns}``
  answers 202 ``{requestId, addedRowIds}``; "if multiple rows match the specified key column(s), they will all be
  updated"; edits are queued and applied "within several seconds" (section "Consistency").
- ``GET /mutationStatus/{requestId}`` answers ``{completed}``.
- Rate limits: reading 100 requests / 6 s, writing 10 / 6 s (section "Rate Limiting" of the current docs); a 429 does
  not promise a Retry-After header, so this fake sends one only when ``send_retry_after`` is set.
- ``GET /docs/{docId}`` ``docSize.overApiSizeLimit`` (schema DocSize).
- Table-scoped tokens (Coda account settings, "Restrict access to specific docs or tables"): ``/whoami`` says
  ``scoped: true``; doc-level endpoints answer 403; the token's own tables, columns and rows work. Whether the
  table list is allowed is not documented: this fake answers 403 (the stricter reading).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.fakes.server import FakeApi, Request, Response

STATUS_MESSAGES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
}  # fmt: skip
READ_LIMIT = (100, 6.0)
WRITE_LIMIT = (10, 6.0)


@dataclass
class Row:
    id: str
    values: dict[str, Any]  # column id -> rich value
    version: int
    created: float = field(default_factory=time.time)


@dataclass
class Grid:
    id: str
    name: str
    columns: dict[str, str]  # column id -> name
    rows: list[Row] = field(default_factory=list)


def rich(value: Any) -> Any:
    """A plain Python value in Coda's rich format (text in triple ticks, the rest as is)."""
    if isinstance(value, str):
        return f"```{value}```"
    if isinstance(value, list):
        return [rich(item) for item in value]
    return value


def simple(value: Any, arrays: bool) -> Any:
    """Coda's simple formats: text unescaped, structured values by name, arrays joined unless ``arrays``."""
    if isinstance(value, str):
        return value.removeprefix("```").removesuffix("```")
    if isinstance(value, dict):
        return value.get("name") or value.get("amount") or value.get("url")
    if isinstance(value, list):
        items = [simple(item, arrays) for item in value]
        return items if arrays else ",".join(str(item) for item in items)
    return value


def encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def decode(token: str) -> dict[str, Any] | None:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


class CodaFake(FakeApi):
    """A Coda account with one doc: named tables (listing) and grids with columns and rows (row endpoints)."""

    prefix = "/apis/v1"

    def __init__(
        self,
        token: str,
        doc_id: str = "AbCDeFGH",
        tables: tuple[str, ...] = ("Leads", "Tasks"),
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        self.token = token
        self.doc_id = doc_id
        self.tables = list(tables)
        self.page_size = 1
        self.rows_page_size = 2  # the server's own maximum page size ("may change at any time")
        self.grids: dict[str, Grid] = {}
        self.scoped_tokens: dict[str, set[str]] = {}  # table-scoped token -> the grid ids it may use
        self.over_api_size_limit = False
        self.rate_limit_pages: set[int] = set()  # row offsets answered 429 once each
        self.send_retry_after = False
        self.read_limit, self.write_limit = READ_LIMIT, WRITE_LIMIT
        self.mutation_delay = 0.3
        self.throttled: list[Request] = []
        self.received_at: dict[int, float] = {}  # id(request) -> time.monotonic() when it arrived
        self._version = itertools.count(1)
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[float, str, list[dict[str, Any]], list[str]]] = {}
        self._done: set[str] = set()
        self._calls: dict[str, list[float]] = {"read": [], "write": []}
        self._mutex = threading.RLock()

    # ---- test helpers: what users do in Coda ---------------------------------------------------------
    def add_grid(self, grid_id: str, name: str, columns: dict[str, str]) -> Grid:
        self.grids[grid_id] = Grid(grid_id, name, dict(columns))
        return self.grids[grid_id]

    def add_row(self, grid_id: str, values: dict[str, Any], row_id: str | None = None) -> str:
        """A user adds a row; ``values`` are plain values keyed by column id."""
        with self._mutex:
            row = Row(row_id or f"i-{next(self._ids)}", {k: rich(v) for k, v in values.items()}, next(self._version))
            self.grids[grid_id].rows.append(row)
            return row.id

    def edit_row(self, grid_id: str, row_id: str, values: dict[str, Any]) -> None:
        with self._mutex:
            row = next(r for r in self.grids[grid_id].rows if r.id == row_id)
            row.values.update({k: rich(v) for k, v in values.items()})
            row.version = next(self._version)

    def delete_row(self, grid_id: str, row_id: str) -> None:
        with self._mutex:
            self.grids[grid_id].rows = [r for r in self.grids[grid_id].rows if r.id != row_id]

    def rename_column(self, grid_id: str, column_id: str, name: str) -> None:
        """Renaming changes no value and no row version: only the column's name."""
        self.grids[grid_id].columns[column_id] = name

    def plain_rows(self, grid_id: str) -> dict[str, dict[str, Any]]:
        """Row id -> {column name: simple value}: what a user sees."""
        self.apply_due_mutations(force=True)
        grid = self.grids[grid_id]
        return {r.id: {grid.columns[c]: simple(v, True) for c, v in r.values.items()} for r in grid.rows}

    # ---- the API --------------------------------------------------------------------------------------
    def error(self, status: int, message: str) -> Response:
        text = STATUS_MESSAGES.get(status, "Internal Server Error")
        return Response(status, {"statusCode": status, "statusMessage": text, "message": f"{text}: {message}"})

    def route(self, request: Request) -> Response:
        self.received_at[id(request)] = time.monotonic()
        self.apply_due_mutations()
        scope = self._scope(request)
        if scope is None:
            return self.error(401, "The API token is invalid or has expired.")
        limited = self._rate_limit(request)
        if limited is not None:
            return limited
        path = unquote(request.path.removeprefix(self.prefix))  # path parameters arrive percent-encoded
        if path == "/whoami":
            return Response(200, self._whoami(scoped=bool(scope)))
        if path.startswith("/mutationStatus/"):
            return self._mutation_status(path.removeprefix("/mutationStatus/"))
        return self._doc_route(request, path, scope)

    def _doc_route(self, request: Request, path: str, scope: set[str]) -> Response:
        doc = f"/docs/{self.doc_id}"
        if path in (doc, f"{doc}/tables"):
            if scope:
                return self.error(403, "The API token does not grant access to this resource.")
            return Response(200, self._doc() if path == doc else self._tables(request))
        parts = path.removeprefix(f"{doc}/tables/").split("/")
        if not path.startswith(f"{doc}/tables/") or parts[0] not in self.grids:
            return self.error(404, "The requested resource could not be located.")
        if scope and parts[0] not in scope:
            return self.error(403, "The API token does not grant access to this resource.")
        return self._table_route(request, self.grids[parts[0]], parts[1:])

    def _scope(self, request: Request) -> set[str] | None:
        """None: bad token; empty set: a doc-wide token; otherwise the grids a table-scoped token may use."""
        auth = request.headers.get("authorization", "")
        if auth == f"Bearer {self.token}":
            return set()
        return self.scoped_tokens.get(auth.removeprefix("Bearer "))

    def _rate_limit(self, request: Request) -> Response | None:
        kind = "read" if request.method == "GET" else "write"
        limit, window = self.read_limit if kind == "read" else self.write_limit
        now = time.monotonic()
        with self._mutex:
            calls = [t for t in self._calls[kind] if now - t < window]
            self._calls[kind] = calls
            offset = self._row_offset(request)
            forced = offset is not None and offset in self.rate_limit_pages
            if forced:
                self.rate_limit_pages.discard(offset)
            if not forced and len(calls) < limit:
                calls.append(now)
                return None
        self.throttled.append(request)
        response = self.error(429, "Rate limit exceeded.")
        if self.send_retry_after:
            response.headers["Retry-After"] = "1"
        return response

    def _row_offset(self, request: Request) -> int | None:
        if request.method != "GET" or not request.path.endswith("/rows"):
            return None
        token = (request.query.get("pageToken") or [""])[0]
        return int((decode(token) or {}).get("o", 0)) if token else 0

    def _whoami(self, scoped: bool) -> dict[str, Any]:
        return {
            "name": "Ops Bot",
            "loginId": "ops@example.com",
            "type": "user",
            "scoped": scoped,
            "tokenName": "kaizenity-health",
            "href": f"http://127.0.0.1{self.prefix}/whoami",
            "workspace": {"id": "ws-1", "type": "workspace", "organizationId": "org-1"},
        }

    def _doc(self) -> dict[str, Any]:
        return {
            "id": self.doc_id,
            "type": "doc",
            "href": f"{self.prefix}/docs/{self.doc_id}",
            "browserLink": f"https://coda.io/d/_d{self.doc_id}",
            "name": "Kaizenity TTA",
            "owner": "ops@example.com",
            "docSize": {
                "totalRowCount": sum(len(g.rows) for g in self.grids.values()),
                "tableAndViewCount": len(self.tables) + len(self.grids),
                "pageCount": 3,
                "overApiSizeLimit": self.over_api_size_limit,
            },
        }

    def _tables(self, request: Request) -> dict[str, Any]:
        everything = [(f"grid-{i}", name) for i, name in enumerate(self.tables)]
        everything += [(g.id, g.name) for g in self.grids.values()]
        start = int((request.query.get("pageToken") or ["0"])[0])
        items = [
            {"id": table_id, "type": "table", "tableType": "table", "name": name, "href": "x"}
            for table_id, name in everything[start : start + self.page_size]
        ]
        body: dict[str, Any] = {"items": items, "href": f"{self.prefix}/docs/{self.doc_id}/tables"}
        if start + self.page_size < len(everything):
            body["nextPageToken"] = str(start + self.page_size)
            body["nextPageLink"] = f"{body['href']}?pageToken={start + self.page_size}"
        return body

    def _table_route(self, request: Request, grid: Grid, rest: list[str]) -> Response:
        if not rest:
            return Response(200, {"id": grid.id, "type": "table", "tableType": "table", "name": grid.name,
                                  "rowCount": len(grid.rows)})  # fmt: skip
        if rest == ["columns"]:
            items = [{"id": c, "type": "column", "name": n} for c, n in grid.columns.items()]
            return Response(200, {"items": items})
        handlers = {"GET": self._list_rows, "POST": self._upsert, "DELETE": self._delete}
        if rest != ["rows"] or request.method not in handlers:
            return self.error(404, "The requested resource could not be located.")
        return handlers[request.method](request, grid)

    def _list_rows(self, request: Request, grid: Grid) -> Response:
        token = (request.query.get("pageToken") or [""])[0]
        if token:
            state = decode(token)
            if state is None or state.get("t") != grid.id:
                return self.error(400, "Invalid page token.")
        else:

            def arg(name: str, default: str) -> str:
                return (request.query.get(name) or [default])[0]

            sync = decode(arg("syncToken", "")) if arg("syncToken", "") else {"v": 0}
            if sync is None:
                return self.error(400, "Invalid sync token.")
            limit = min(int(arg("limit", "25")), self.rows_page_size)
            state = {"t": grid.id, "o": 0, "l": limit, "f": arg("valueFormat", "simple"),
                     "n": arg("useColumnNames", "false") == "true", "since": sync["v"],
                     "snap": self._current_version()}  # fmt: skip
        with self._mutex:
            matching = [r for r in grid.rows if state["since"] < r.version <= state["snap"]]
        page = matching[state["o"] : state["o"] + state["l"]]
        items = [self._row_body(grid, row, index, state) for index, row in enumerate(page, state["o"])]
        href = f"{self.prefix}/docs/{self.doc_id}/tables/{grid.id}/rows"
        body: dict[str, Any] = {"items": items, "href": href}
        if state["o"] + state["l"] < len(matching):
            body["nextPageToken"] = encode({**state, "o": state["o"] + state["l"]})
            body["nextPageLink"] = f"{href}?pageToken={body['nextPageToken']}"
        else:
            body["nextSyncToken"] = encode({"v": state["snap"]})
        return Response(200, body)

    def _current_version(self) -> int:
        with self._mutex:
            return max((r.version for g in self.grids.values() for r in g.rows), default=0)

    def _row_body(self, grid: Grid, row: Row, index: int, state: dict[str, Any]) -> dict[str, Any]:
        fmt = state["f"]
        values = {
            (grid.columns[c] if state["n"] else c): (v if fmt == "rich" else simple(v, fmt == "simpleWithArrays"))
            for c, v in row.values.items()
            if c in grid.columns
        }
        name_column = next(iter(grid.columns), "")
        return {
            "id": row.id, "type": "row", "index": index, "name": simple(row.values.get(name_column, ""), False),
            "href": f"{self.prefix}/docs/{self.doc_id}/tables/{grid.id}/rows/{row.id}", "values": values,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(row.created)),
        }  # fmt: skip

    def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _column_id(self, grid: Grid, column: str) -> str | None:
        if column in grid.columns:
            return column
        return next((c for c, n in grid.columns.items() if n == column), None)

    def _upsert(self, request: Request, grid: Grid) -> Response:
        body = self._body(request)
        if body is None or not isinstance(body.get("rows"), list):
            return self.error(400, "The request body must have rows[].")
        for name in [*body.get("keyColumns", []), *(c.get("column") for r in body["rows"] for c in r.get("cells", []))]:
            if self._column_id(grid, str(name)) is None:
                return self.error(400, f"Unknown column {name!r}.")
        request_id = f"mutate:{next(self._ids)}"
        added = [f"i-{next(self._ids)}" for _ in body["rows"]]
        with self._mutex:
            self._pending[request_id] = (time.monotonic() + self.mutation_delay, grid.id, body["rows"], added)
            self._keys = getattr(self, "_keys", {})
            self._keys[request_id] = [self._column_id(grid, str(k)) for k in body.get("keyColumns", [])]
        return Response(202, {"requestId": request_id, "addedRowIds": added})

    def _delete(self, request: Request, grid: Grid) -> Response:
        body = self._body(request) or {}
        ids = set(body.get("rowIds") or [])
        with self._mutex:
            grid.rows = [r for r in grid.rows if r.id not in ids]
        return Response(202, {"requestId": f"mutate:{next(self._ids)}", "rowIds": sorted(ids)})

    def _mutation_status(self, request_id: str) -> Response:
        with self._mutex:
            if request_id in self._done:
                return Response(200, {"completed": True})
            if request_id in self._pending:
                return Response(200, {"completed": False})
        return self.error(404, "The requested resource could not be located.")

    def apply_due_mutations(self, force: bool = False) -> None:
        """Apply queued upserts whose processing time has come (Coda: "within several seconds")."""
        now = time.monotonic()
        with self._mutex:
            for request_id, (due, grid_id, rows, added) in list(self._pending.items()):
                if force or due <= now:
                    self._apply(self.grids[grid_id], rows, self._keys.pop(request_id), added)
                    del self._pending[request_id]
                    self._done.add(request_id)

    def _apply(self, grid: Grid, rows: list[dict[str, Any]], keys: list[str | None], added: list[str]) -> None:
        for edit, new_id in zip(rows, added, strict=True):
            cells = {self._column_id(grid, str(c["column"])): rich(c.get("value")) for c in edit.get("cells", [])}
            key = {k: cells.get(k) for k in keys if k}
            matches = [r for r in grid.rows if key and all(r.values.get(k) == v for k, v in key.items())]
            for row in matches:
                row.values.update({k: v for k, v in cells.items() if k})
                row.version = next(self._version)
            if not matches:
                grid.rows.append(Row(new_id, {k: v for k, v in cells.items() if k}, next(self._version)))
