"""PostgreSQL: the platform database and n8n's own database, on one server with a named volume."""

from __future__ import annotations

from infra.model import FileUpload, HealthCheck, PortBinding, SecretRef, ServiceSpec, VolumeMount
from infra.services.common import container_name, labels
from infra.settings import Publish, Settings

NAME = "postgres"
PORT = 5432
DATA_DIR = "/var/lib/postgresql/data"
# The init scripts are uploads, and Docker copies into a read-only root only where the target is a volume: so
# the image's init directory is a (small) volume of its own. The scripts run only on an empty data directory.
INIT_VOLUME = "pg-init"
INIT_DIR = "/docker-entrypoint-initdb.d"
DATA_VOLUME = "pgdata"

# Runs once, on an empty data directory (the image's /docker-entrypoint-initdb.d contract). psql variables
# keep the password out of the script text; the script is sourced or executed by the entrypoint, so it sets no
# shell options of its own.
N8N_DATABASE_INIT = """\
#!/bin/sh
# Creates n8n's own role and database (rendered by infra/services/postgres.py).
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\
  --set=n8n_user="$N8N_DB_USER" --set=n8n_password="$N8N_DB_PASSWORD" --set=n8n_db="$N8N_DB_NAME" <<'SQL'
CREATE ROLE :"n8n_user" LOGIN PASSWORD :'n8n_password';
CREATE DATABASE :"n8n_db" OWNER :"n8n_user";
REVOKE ALL ON DATABASE :"n8n_db" FROM PUBLIC;
SQL
"""


# Runs once on an empty data directory, after the official entrypoint appended `host all all all <method>`.
REPLICATION_HBA_INIT = """\
#!/bin/sh
# Lets the backup sidecar stream WAL and take base backups (rendered by infra/services/postgres.py).
printf 'host replication "%s" all scram-sha-256\\n' "$POSTGRES_USER" >>"$PGDATA/pg_hba.conf"
"""
REPLICATION_HBA_UPLOAD = FileUpload(f"{INIT_DIR}/05-replication-hba.sh", REPLICATION_HBA_INIT)


def build(settings: Settings) -> ServiceSpec:
    """The PostgreSQL container: published on 127.0.0.1 at most, health-checked over TCP."""
    pg = settings.postgres
    ports = (
        (PortBinding(PORT, pg.host_port, "127.0.0.1", setting="postgres.hostPort"),)
        if pg.publish is Publish.LOOPBACK
        else ()
    )
    return ServiceSpec(
        name=NAME,
        kind="postgres",
        container_name=container_name(settings, NAME),
        image=settings.images.postgres,
        command=(
            "postgres",
            "-c",
            f"max_connections={pg.max_connections}",
            *(
                ("-c", f"max_slot_wal_keep_size={settings.backups.max_slot_wal_keep_mb}MB")
                if settings.backups.enabled
                else ()
            ),
        ),
        env=(
            ("POSTGRES_USER", pg.superuser),
            ("POSTGRES_PASSWORD", SecretRef("postgresPassword")),
            ("POSTGRES_DB", pg.database),
            ("PGDATA", DATA_DIR),
            ("N8N_DB_NAME", settings.n8n.database),
            ("N8N_DB_USER", settings.n8n.db_user),
            ("N8N_DB_PASSWORD", SecretRef("n8nDbPassword")),
        ),
        ports=ports,
        mounts=(VolumeMount(DATA_VOLUME, DATA_DIR), VolumeMount(INIT_VOLUME, INIT_DIR)),
        # PostgreSQL writes only to its data directory, its socket/lock directory and (initdb's password file,
        # psql) /tmp: the rest of the image stays read-only. Sorts and hashes spill into PGDATA, not /tmp.
        read_only_rootfs=True,
        tmpfs=(
            ("/var/run/postgresql", "size=1m,mode=2775"),
            ("/tmp", "size=16m,mode=1777"),  # noqa: S108 - a container-private tmpfs, not a host path
        ),
        uploads=(
            FileUpload(f"{INIT_DIR}/10-n8n-database.sh", N8N_DATABASE_INIT),
            *((REPLICATION_HBA_UPLOAD,) if settings.backups.enabled else ()),
        ),
        # TCP, not the socket: while initialising, the temporary server listens on the socket only.
        healthcheck=HealthCheck(
            test=("CMD-SHELL", f'pg_isready -h 127.0.0.1 -p {PORT} -U "$POSTGRES_USER" -d "$POSTGRES_DB"'),
            interval_s=3,
            retries=20,
            start_period_s=10,
        ),
        restart=settings.restart_policy,
        memory_mb=pg.memory_mb,
        aliases=(NAME,),
        # The entrypoint starts as root to own the data directory, then drops to the postgres user.
        cap_add=("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"),
        labels=labels(settings, NAME),
        stop_grace_s=60,
    )


def dsn(user: str, password: str, host: str, port: int, database: str) -> str:
    """A libpq URL with the password percent-encoded (generated secrets may hold URL-special characters)."""
    from urllib.parse import quote

    return f"postgresql://{user}:{quote(password, safe='')}@{host}:{port}/{database}"
