"""What is in a database: its tables with row counts and content digests, its roles, whether it holds data.

These numbers are recorded at backup time and compared after a restore: equal counts and digests for every
table is what "the restore worked" means here.
"""

from __future__ import annotations

from dataclasses import dataclass

from backups.container_db import ContainerDatabase


@dataclass(frozen=True)
class TableStats:
    """Rows in one table and a digest of its contents (see :func:`table_digest_sql`)."""

    rows: int
    digest: str


# What counts as data someone created, for restore's overwrite check. A freshly started environment already has
# rows: n8n's bookkeeping, the seeded workflows and credentials (re-created from git on every deploy), their
# executions and heartbeats. Those may be replaced without --force; anything else may not.
N8N_DATA_QUERIES = (
    "SELECT count(*) FROM (SELECT 1 FROM workflow_entity WHERE name NOT LIKE 'Kaizenity: %' LIMIT 1) x",
    "SELECT count(*) FROM (SELECT 1 FROM credentials_entity WHERE name NOT LIKE 'Kaizenity %' LIMIT 1) x",
)
APP_BOOKKEEPING_TABLES = ("ops.heartbeats", "ops.base_backups")

_USER_TABLES = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1
"""


@dataclass(frozen=True)
class RoleInfo:
    """A role the dumped objects name (owner, grantee): restore creates it when the target lacks it."""

    name: str
    can_login: bool


def table_stats(db: ContainerDatabase, database: str) -> dict[str, TableStats]:
    """Row count and content digest of every user table (a partitioned table counts its partitions' rows)."""
    stats: dict[str, TableStats] = {}
    for (table,) in db.query(database, _USER_TABLES):
        rows, digest = db.query(database, table_digest_sql(table))[0]
        stats[table] = TableStats(rows=int(rows), digest=digest)
    return stats


def table_digest_sql(table: str) -> str:
    """Row count and an order-independent content digest in constant memory.

    Each row's text is hashed on its own (md5, first 60 bits as a bigint) and the hashes are summed as numeric:
    a streaming aggregate whose state is two numbers, however large the table. The former digest,
    md5(string_agg(row ORDER BY row)), built the whole table as one text value (capped at 1 GB) and got a
    backend SIGKILLed on a 685 MB table. A changed, missing or duplicated row changes the sum.
    """
    row_hash = "('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint"
    return f"SELECT count(*), coalesce(sum({row_hash}::numeric), 0)::text FROM {table} t"


def holds_data(db: ContainerDatabase, database: str, role: str) -> bool:
    """True when restoring over `database` would destroy data someone created."""
    if not db.query(database, "SELECT 1"):  # pragma: no cover - psql always returns the row
        return False
    tables = {name for (name,) in db.query(database, _USER_TABLES)}
    if role == "n8n":
        if "public.workflow_entity" not in tables:
            return False
        return any(int(db.query(database, sql)[0][0]) for sql in N8N_DATA_QUERIES)
    candidates = [t for t in tables if not t.startswith("kaizenity_meta.") and t not in APP_BOOKKEEPING_TABLES]
    return any(int(db.query(database, f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1) x")[0][0]) for t in candidates)


def database_exists(db: ContainerDatabase, database: str) -> bool:
    rows = db.query("postgres", f"SELECT 1 FROM pg_database WHERE datname = {_literal(database)}")
    return bool(rows)


def database_owner(db: ContainerDatabase, database: str) -> str:
    sql = f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {_literal(database)}"
    return db.query("postgres", sql)[0][0]


def roles(db: ContainerDatabase) -> list[RoleInfo]:
    """Every non-system role of the cluster."""
    rows = db.query("postgres", "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")
    return [RoleInfo(name, can_login == "t") for name, can_login in rows]


def server_version(db: ContainerDatabase) -> str:
    return db.query("postgres", "SHOW server_version")[0][0]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
