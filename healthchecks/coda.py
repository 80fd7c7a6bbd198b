"""Coda: the token works, the configured doc is reachable, and the tables the workflows write to exist.

A 429 is reported as a WARNING that the state was not verified, never as the doc being down: Coda's read
limit (100 requests / 6 s) is shared with the workflows, and paging someone because a busy workflow ate
the quota would teach them to ignore this check.

Two more cases from the published contract (https://coda.io/apis/v1/openapi.yaml):
- ``GET /docs/{docId}`` reports ``docSize.overApiSizeLimit``: when true the API no longer serves the doc's
  data, so every sync fails: CRITICAL even though the doc "answers".
- A least-privilege token restricted to some tables (``/whoami`` says ``scoped: true``) gets 403 on doc-level
  endpoints (the doc, its table list). That is the recommended set-up, not a fault: the probe then checks what
  such a token may read (each required table and one row of it) and says which doc-level checks it could not
  make, instead of calling the doc unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from healthchecks.context import ProbeContext
from healthchecks.httpclient import Service, fetch, generic_problem, json_object, make_client
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

DEFAULT_BASE_URL = "https://coda.io/apis/v1"
SERVICE = Service("Coda", "CODA_API_TOKEN", "CODA_API_BASE_URL", "https://status.coda.io")
MAX_PAGES = 20  # 2,000 tables at limit=100: far beyond any real doc, a guard against a looping token


@dataclass(frozen=True)
class CodaTarget:
    """The Coda account and doc the workflows depend on."""

    token: str
    doc_id: str
    base_url: str = DEFAULT_BASE_URL
    required_tables: tuple[str, ...] = ()


def probe(target: CodaTarget, ctx: ProbeContext) -> ProbeResult:
    """whoami (token), the doc, then its tables; stops at the first finding that hides the rest."""
    builder = ResultBuilder("coda")
    headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
    with make_client(headers) as client:
        try:
            scoped = _check_token(client, target, ctx, builder)
            if _check_doc(client, target, ctx, builder, scoped):
                _check_tables(client, target, ctx, builder)
            else:
                _check_scoped_tables(client, target, ctx, builder)
        except Problem as problem:
            problem.record(builder)
    return builder.build()


def _get(
    client: Any, url: str, ctx: ProbeContext, check: str, not_found: str = "", **params: Any
) -> tuple[dict[str, Any], float]:
    reply = fetch(client, "GET", url, ctx, SERVICE, params=params or None)
    problem = generic_problem(reply, SERVICE, check, not_found)
    if problem is not None:
        raise problem
    return json_object(reply, SERVICE, check), reply.latency


def _check_token(client: Any, target: CodaTarget, ctx: ProbeContext, builder: ResultBuilder) -> bool:
    """whoami: the token works; returns whether it is restricted to some docs or tables (``scoped``)."""
    body, latency = _get(client, f"{target.base_url}/whoami", ctx, "token")
    builder.measure(Measurement("latency", round(latency, 4), Unit.SECONDS, minimum=0))
    who = body.get("name") or body.get("tokenName") or "unknown user"
    scoped = body.get("scoped") is True
    builder.add("token", Status.OK, f"token valid ({who}{', scoped' if scoped else ''})")
    return scoped


def _check_doc(client: Any, target: CodaTarget, ctx: ProbeContext, builder: ResultBuilder, scoped: bool) -> bool:
    """The doc and its API size; False when a table-scoped token may not read doc-level endpoints."""
    url = f"{target.base_url}/docs/{quote(target.doc_id, safe='')}"
    reply = fetch(client, "GET", url, ctx, SERVICE)
    if reply.status_code == 403 and (scoped or target.required_tables):
        return False
    problem = generic_problem(reply, SERVICE, "doc", f"doc {target.doc_id} not found (CODA_DOC_ID)")
    if problem is not None:
        raise problem
    body = json_object(reply, SERVICE, "doc")
    name = body.get("name", target.doc_id)
    raw_size = body.get("docSize")
    size: dict[str, Any] = raw_size if isinstance(raw_size, dict) else {}
    if size.get("overApiSizeLimit") is True:
        builder.add(
            "doc",
            Status.CRITICAL,
            f"doc {name!r} is over Coda's API size limit (docSize.overApiSizeLimit): the API serves none of its data",
            "Shrink the doc below the API limit (archive old rows, remove large attachments, split tables into "
            "another doc); until then every Coda sync fails.",
        )
        return True
    builder.add("doc", Status.OK, f"doc {name!r} reachable")
    return True


def _check_scoped_tables(client: Any, target: CodaTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    """A table-scoped token: read each required table and one of its rows; doc-level checks are not possible."""
    builder.add(
        "doc",
        Status.OK,
        "doc-level checks not possible with a table-scoped token (doc reachability, API size limit, table list)",
    )
    if not target.required_tables:
        builder.add(
            "tables",
            Status.WARNING,
            "the doc refused this token (HTTP 403) and no tables are configured to check instead",
            "Set coda.required_tables (CODA_REQUIRED_TABLES) to the table ids this token is scoped to, or use a token "
            "with access to the doc.",
        )
        return
    base = f"{target.base_url}/docs/{quote(target.doc_id, safe='')}/tables"
    for table in target.required_tables:
        url = f"{base}/{quote(table, safe='')}"
        _get(client, url, ctx, "tables", f"table {table} not found in doc {target.doc_id} (coda.required_tables)")
        _get(client, f"{url}/rows", ctx, "tables", f"rows of table {table} not readable", limit=1)
    count = len(target.required_tables)
    builder.add("tables", Status.OK, f"all {count} required tables and their rows readable with the scoped token")


def _check_tables(client: Any, target: CodaTarget, ctx: ProbeContext, builder: ResultBuilder) -> None:
    if not target.required_tables:
        return
    present = _table_names(client, target, ctx)
    missing = [table for table in target.required_tables if table not in present]
    builder.measure(Measurement("tables_missing", len(missing), Unit.COUNT, critical=0.5, minimum=0))
    if missing:
        builder.add(
            "tables",
            Status.CRITICAL,
            f"tables missing from the doc: {', '.join(missing)}",
            "Someone renamed or deleted tables the workflows write to: restore them in Coda (doc history) or "
            "update coda.required_tables and the workflows together.",
        )
    else:
        builder.add("tables", Status.OK, f"all {len(target.required_tables)} required tables present")


def _table_names(client: Any, target: CodaTarget, ctx: ProbeContext) -> set[str]:
    """Names and IDs of every table, following nextPageToken (Coda pages lists)."""
    url = f"{target.base_url}/docs/{quote(target.doc_id, safe='')}/tables"
    names: set[str] = set()
    params: dict[str, Any] = {"limit": 100}
    for _ in range(MAX_PAGES):
        body, _ = _get(client, url, ctx, "tables", **params)
        if not isinstance(body.get("items"), list):
            raise Problem("tables", Status.UNKNOWN, "Coda table list has no items[]", "Check CODA_API_BASE_URL.")
        names |= {str(item.get(key)) for item in body["items"] if isinstance(item, dict) for key in ("name", "id")}
        if not body.get("nextPageToken"):
            break
        params = {"limit": 100, "pageToken": body["nextPageToken"]}
    return names
