"""Per-environment login roles: members of a group role the migrations create, with the environment's password.

- `kaizenity_n8n` in `kaizenity_app`: the login n8n's workflows use (appDatabasePassword).
- `kaizenity_monitor` in `kaizenity_monitoring` (migration 0013, pg_monitor): postgres_exporter's login
  (monitoringDatabasePassword), only where monitoring is enabled.

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
