"""The login role n8n's workflows use: a member of `kaizenity_app`, with the environment's password.

Migrations create group roles only; a login with a password is per environment, so it is made here, after the
migrations, and its password is (re)set on every run so the secret in the stack is always the one that works.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

APP_GROUP = "kaizenity_app"


def ensure_app_login(database_url: str, user: str, password: str) -> None:
    """Create or update LOGIN role `user` in `kaizenity_app`."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_GROUP), sql.Identifier(user)))
