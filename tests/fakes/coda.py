"""Coda API v1 (https://coda.io/apis/v1): whoami, docs/{id}, docs/{id}/tables paged by nextPageToken."""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeApi, Request, Response

STATUS_MESSAGES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}


class CodaFake(FakeApi):
    """A Coda account with one doc and its tables; pages tables ``page_size`` at a time."""

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
        # Rows per table id (the "list rows" endpoint), paged `rows_page_size` at a time; a page token in
        # `rate_limit_once` is answered 429 (Retry-After 1) the first time it is asked for.
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.rows_page_size = 2
        self.rate_limit_once: set[str] = set()

    def error(self, status: int, message: str) -> Response:
        text = STATUS_MESSAGES.get(status, "Internal Server Error")
        return Response(status, {"statusCode": status, "statusMessage": text, "message": f"{text}: {message}"})

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self.error(401, "The API token is invalid or has expired.")
        path = request.path.removeprefix(self.prefix)
        if path == "/whoami":
            return Response(200, self._whoami())
        if path == f"/docs/{self.doc_id}":
            return Response(200, self._doc())
        if path == f"/docs/{self.doc_id}/tables":
            return Response(200, self._tables(request))
        table = path.removeprefix(f"/docs/{self.doc_id}/tables/").removesuffix("/rows")
        if path.endswith("/rows") and table in self.rows:
            return self._rows(table, request)
        return self.error(404, "The requested resource could not be located.")

    def _whoami(self) -> dict[str, Any]:
        return {
            "name": "Ops Bot",
            "loginId": "ops@example.com",
            "type": "user",
            "scoped": False,
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
            "docSize": {"totalRowCount": 42, "tableAndViewCount": len(self.tables), "pageCount": 3},
        }

    def _tables(self, request: Request) -> dict[str, Any]:
        start = int((request.query.get("pageToken") or ["0"])[0])
        page = self.tables[start : start + self.page_size]
        items = [
            {"id": f"grid-{index}", "type": "table", "tableType": "table", "name": name, "href": "x"}
            for index, name in enumerate(page, start)
        ]
        more = start + self.page_size < len(self.tables)
        body: dict[str, Any] = {"items": items, "href": f"{self.prefix}/docs/{self.doc_id}/tables"}
        if more:
            body["nextPageToken"] = str(start + self.page_size)
            body["nextPageLink"] = f"{body['href']}?pageToken={start + self.page_size}"
        return body

    def _rows(self, table: str, request: Request) -> Response:
        token = (request.query.get("pageToken") or ["0"])[0]
        if token in self.rate_limit_once:
            self.rate_limit_once.discard(token)
            response = self.error(429, "Rate limit exceeded.")
            response.headers["Retry-After"] = "1"
            return response
        start = int(token)
        rows = self.rows[table]
        items = [
            {"id": row["id"], "type": "row", "index": index, "name": row["id"], "values": row["values"],
             "href": f"{self.prefix}/docs/{self.doc_id}/tables/{table}/rows/{row['id']}"}
            for index, row in enumerate(rows[start : start + self.rows_page_size], start)
        ]  # fmt: skip
        body: dict[str, Any] = {"items": items, "href": f"{self.prefix}/docs/{self.doc_id}/tables/{table}/rows"}
        if start + self.rows_page_size < len(rows):
            body["nextPageToken"] = str(start + self.rows_page_size)
        return Response(200, body)
