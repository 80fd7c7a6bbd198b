"""Which database server instance a dynamic resource last ran against, so a recreated database is noticed.

The schema migrations and the seed workflows live *in* the database, but their Pulumi inputs (file hashes, values)
do not change when the database is recreated (a replaced `pgdata` volume, a restored host): their diff then says
"no change" and the new, empty database is never migrated or seeded (issue 10, defect 6). Two signals fix that:

- an input bound to the PostgreSQL container's id: the engine knows when it replaces that container (it sees the
  id as unknown during preview and new after), which is also what a replaced volume forces through
  delete-before-replace of its dependants;
- the server's `system_identifier` (`pg_control_system()`, set once by initdb and never changed for the life of
  the data directory), kept in the resource's outputs and compared with the live one in `diff`, which catches a
  database recreated outside Pulumi. It is read best-effort: unreachable (the container is being replaced in the
  same update) means "unknown", and the container-id input already carries that case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INSTANCE_INPUT = "databaseInstance"
IDENTITY_OUTPUT = "systemIdentifier"
CONNECT_TIMEOUT_S = 5


def system_identifier(database_url: str, timeout_s: int = CONNECT_TIMEOUT_S) -> str | None:
    """The live server's initdb identity, or None when it cannot be read (unreachable, not a superuser)."""
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=timeout_s, autocommit=True) as conn:
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def database_was_recreated(olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    """True when the database these outputs describe is not the one `news` points at any more."""
    if olds.get(INSTANCE_INPUT) != news.get(INSTANCE_INPUT):
        return True
    recorded = olds.get(IDENTITY_OUTPUT)
    url = news.get("databaseUrl")
    if not recorded or not isinstance(url, str):
        return False
    live = system_identifier(url)
    return live is not None and live != recorded
