"""After a restore: make the environment's record and the restored n8n agree again.

The restored n8n database is the *source* environment's: its owner has the source's password, its API keys are
the source's, and the credentials the seed wrote hold the source's secrets (e.g. the app database password).
The environment's record (owner password, credential fingerprints) describes the *target*, so without this step
the seeder cannot log in and the seed workflows talk to the database with a password that no longer works.
Reconciling = the owner gets the record's password and the seed runs again: it deletes the seeder API keys the
source left (workflows/deploy.py delete_seeder_keys), rewrites the credentials, activates the workflows and
grants health's read-only login again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from backups.container_db import ContainerDatabase
from backups.crypto import n8n_decrypt, n8n_encrypt, scram_verifier
from backups.target import container_env
from workflows.deploy import OWNER_EMAIL

Progress = Callable[[str], None]
APP_CREDENTIAL = "Kaizenity app database"  # workflows/credentials.yaml


def reconcile_local_record(prefix: str, progress: Progress = lambda _m: None) -> None:
    """Reconcile the local engine's record of `prefix` (a `pulumi up` environment: re-run `pulumi up`)."""
    from infra.local_state import load_state, save_state

    endpoints = load_state(prefix)
    if endpoints is None:
        progress(
            f"no local record of '{prefix}': after a restore into a Pulumi environment run `pulumi up` (it re-seeds "
            "the workflows with the stack's secrets) before `kaizenity health`"
        )
        return
    reconcile_endpoints(endpoints, progress)
    save_state(endpoints)


def reconcile_endpoints(endpoints: Any, progress: Progress = lambda _m: None, timeout_s: float = 420) -> None:
    """Owner password in the restored n8n database, then the seed (which deletes stale seeder API keys), for a
    LocalEndpoints record."""
    import bcrypt

    from infra.docker_engine import docker_client
    from infra.local_seeding import seed_workflows

    client = docker_client()
    postgres = client.containers.get(endpoints.containers["postgres"])
    pg_env = container_env(postgres)
    n8n_database = container_env(client.containers.get(endpoints.containers["n8n"])).get(
        "DB_POSTGRESDB_DATABASE", "n8n"
    )
    db = ContainerDatabase(client, postgres.name, pg_env.get("POSTGRES_USER", "postgres"))
    password = endpoints.secrets["n8nOwnerPassword"].encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()
    email = OWNER_EMAIL.replace("'", "''")
    db.execute(n8n_database, f"""UPDATE "user" SET password = '{hashed}' WHERE email = '{email}'""")
    _app_login_and_credential(db, n8n_database, endpoints)
    _monitoring_login(db, endpoints.secrets.get("monitoringDatabasePassword"))
    endpoints.credential_fingerprints = {}
    progress("n8n owner password reconciled with the environment's record; seeding workflows")
    deadline = time.monotonic() + timeout_s
    while True:  # n8n was just started: its API answers some seconds after the container runs
        try:
            seed_workflows(endpoints, progress=progress)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(3)


def _monitoring_login(db: ContainerDatabase, password: str | None) -> None:
    """postgres_exporter's login (migration 0013's group role) with this environment's password: restored, it has
    the source's (or, from a backup older than monitoring, does not exist)."""
    from bootstrap.app_login import MONITORING_GROUP, MONITORING_USER

    if not password:
        return
    verifier = scram_verifier(password)
    if db.query("postgres", f"SELECT count(*) FROM pg_roles WHERE rolname = '{MONITORING_USER}'")[0][0] == "1":
        db.execute("postgres", f"ALTER ROLE {MONITORING_USER} PASSWORD '{verifier}'")
    elif db.query("postgres", f"SELECT count(*) FROM pg_roles WHERE rolname = '{MONITORING_GROUP}'")[0][0] == "1":
        db.execute("postgres", f"CREATE ROLE {MONITORING_USER} LOGIN PASSWORD '{verifier}' IN ROLE {MONITORING_GROUP}")


def _app_login_and_credential(db: ContainerDatabase, n8n_database: str, endpoints: Any) -> None:
    """The workflows' database login: role password and the n8n credential that holds it, switched together.

    Restored, both hold the source's password (so the running workflows keep working); the seed would first set
    the role's password, then rewrite the credential through n8n's API seconds later, and every scheduled
    execution in between fails. Rewriting the credential in place first (n8n's cipher, same key) and the role's
    password right after leaves a window of milliseconds."""
    import json

    from infra.local_seeding import seed_values_for

    values = seed_values_for(endpoints, endpoints.database_url.rsplit("/", 1)[1], {})
    user, password = values.get("appDatabaseUser", "kaizenity_n8n"), values["appDatabasePassword"]
    key = endpoints.secrets["n8nEncryptionKey"]
    rows = db.query(n8n_database, f"SELECT id, data FROM credentials_entity WHERE name = '{APP_CREDENTIAL}'")
    for credential_id, data in rows:
        fields = json.loads(n8n_decrypt(key, data))
        fields["password"] = password
        encrypted = n8n_encrypt(key, json.dumps(fields).encode())
        db.execute(n8n_database, f"UPDATE credentials_entity SET data = '{encrypted}' WHERE id = '{credential_id}'")
    quoted = '"' + user.replace('"', '""') + '"'
    if db.query("postgres", f"SELECT count(*) FROM pg_roles WHERE rolname = '{user}'")[0][0] == "1":
        db.execute("postgres", f"ALTER ROLE {quoted} PASSWORD '{scram_verifier(password)}'")
