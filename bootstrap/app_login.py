"""Per-environment login roles: members of a group role the migrations create, with the environment's password.

- `kaizenity_n8n` in `kaizenity_app`: the login n8n's workflows use (appDatabasePassword).
- `kaizenity_monitor` in `kaizenity_monitoring` (migration 0013, pg_monitor): postgres_exporter's login
  (monitoringDatabasePassword), only where monitoring is enabled.
- `kaizenity_n8n_reader` (n8nReaderDbPassword): `kaizenity health`'s read-only login to *n8n's* database, granted
  only the columns healthchecks/n8n_state.py reads. n8n creates its tables itself (not our migrations), so the
  seeder grants them once n8n answers: :func:`ensure_n8n_reader`.

Migrations create group roles only; a login with a password is per environment, so it is made here, after the
migrations, and its password is (re)set on every run so the secret in the stack is always the one that works.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

APP_GROUP = "kaizenity_app"
MONITORING_GROUP = "kaizenity_monitoring"
MONITORING_USER = "kaizenity_monitor"
# The logins both engines make right after the migrations (the workflows' login is made by the seeder).
LOGIN_GROUPS = {MONITORING_USER: MONITORING_GROUP}
N8N_READER_USER = "kaizenity_n8n_reader"


def ensure_login(database_url: str, user: str, password: str, group: str) -> None:
    """Create or update LOGIN role `user` (password `password`) in group role `group`."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(user)))


def ensure_app_login(database_url: str, user: str, password: str) -> None:
    """Create or update LOGIN role `user` in `kaizenity_app`."""
    ensure_login(database_url, user, password, APP_GROUP)


def ensure_logins(database_url: str, passwords: Mapping[str, str]) -> None:
    """Create or update each login of `passwords` (user -> password, users of LOGIN_GROUPS) in its group."""
    for user, password in passwords.items():
        ensure_login(database_url, user, password, LOGIN_GROUPS[user])


def ensure_n8n_reader(database_url: str, n8n_database: str, password: str, user: str = N8N_READER_USER) -> None:
    """Create or update LOGIN role `user` and grant it exactly the columns of n8n's tables health reads.

    `database_url` is the superuser's; n8n must have created its tables (it has once its API answers). Column
    grants (healthchecks/n8n_state.py READER_COLUMNS): never execution data, credentials, users or API keys. The
    role is read-only by privilege (SELECT only) and by default (`default_transaction_read_only`).
    """
    from psycopg.conninfo import make_conninfo

    from healthchecks.n8n_state import READER_COLUMNS

    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(user)))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(n8n_database), sql.Identifier(user))
        )
    n8n_url = make_conninfo(database_url, dbname=n8n_database)
    with psycopg.connect(n8n_url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(user)))
        for table, columns in READER_COLUMNS.items():
            conn.execute(
                sql.SQL("GRANT SELECT ({}) ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(sql.Identifier(column) for column in columns),
                    sql.Identifier(table),
                    sql.Identifier(user),
                )
            )
