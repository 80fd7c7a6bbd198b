"""The backup sidecar: continuous WAL streaming plus scheduled, verified base backups, outside the data volume.

Why PostgreSQL's own `pg_receivewal` + `pg_basebackup` rather than pgBackRest or Barman: both of those need a
tool inside the database container (pgBackRest's `archive_command`) or a derived image, which cannot be built
from the official image on a registry-less host and would change what dev/staging/prod run. The sidecar runs
the *same* `postgres` image (every official tag ships pg_receivewal, pg_basebackup, pg_verifybackup and
pg_archivecleanup; so does the offline `kaizenity-local/postgres`), streams WAL over the replication protocol
through a slot (no WAL lost while the sidecar restarts), and never pauses a writer: a base backup is a
non-blocking copy under `pg_backup_start`. The schedule, retention and checksum logic is the shell script
`backup_agent.sh` beside this module (the image has bash, flock, sha256sum and gosu; no Python).

Replication authenticates as the superuser over scram-sha-256: a base backup copies every password hash of the
cluster anyway, so a separate REPLICATION role would not narrow what the sidecar can read. The official image's
pg_hba.conf adds only `host all all all`, and `all` does not match replication connections (pg_hba.conf docs:
"the value replication ... does not match all"), so the PostgreSQL service adds a `host replication` line
(:data:`infra.services.postgres.REPLICATION_HBA_INIT`).
"""

from __future__ import annotations

from pathlib import Path

from infra.model import FileUpload, HealthCheck, SecretRef, ServiceSpec, VolumeMount
from infra.services import postgres
from infra.services.common import container_name, labels
from infra.settings import Settings

NAME = "backup"
ARCHIVE_VOLUME = "backup-archive"
ARCHIVE_DIR = "/archive"
AGENT_PATH = "/usr/local/bin/kaizenity-backup-agent"
SLOT = "kaizenity_archive"
AGENT_SCRIPT = (Path(__file__).with_name("backup_agent.sh")).read_text(encoding="utf-8")


def build(settings: Settings) -> ServiceSpec:
    """The sidecar container: the PostgreSQL image running the backup agent against the `postgres` service."""
    pg, backups = settings.postgres, settings.backups
    return ServiceSpec(
        name=NAME,
        kind="backup",
        container_name=container_name(settings, NAME),
        image=settings.images.postgres,
        command=(AGENT_PATH, "run"),
        env=(
            ("PGHOST", postgres.NAME),
            ("PGPORT", str(postgres.PORT)),
            ("PGUSER", pg.superuser),
            ("PGPASSWORD", SecretRef("postgresPassword")),
            ("PGAPPNAME", "kaizenity-backup"),
            ("PGDATABASE", pg.database),  # where the agent records each verified base backup (ops.base_backups)
            ("ARCHIVE_DIR", ARCHIVE_DIR),
            ("BACKUP_SLOT", SLOT),
            ("BACKUP_INTERVAL_SECONDS", str(backups.interval_minutes * 60)),
            ("BACKUP_RETENTION", str(backups.retention)),
            ("BACKUP_CHECKPOINT", backups.checkpoint),
            ("BACKUP_MAX_RATE", backups.max_rate),
        ),
        mounts=(VolumeMount(ARCHIVE_VOLUME, ARCHIVE_DIR),),
        uploads=(FileUpload(AGENT_PATH, AGENT_SCRIPT, executable=True),),
        healthcheck=HealthCheck(
            test=("CMD-SHELL", "grep -qsx pg_receivewal /proc/[0-9]*/comm"),  # no procps in the image
            interval_s=10,
            retries=6,
            start_period_s=5,
        ),
        restart=settings.restart_policy,
        memory_mb=backups.memory_mb,
        aliases=(NAME,),
        depends_on=(postgres.NAME,),
        # Starts as root only to own the archive volume, then drops to the postgres user (gosu).
        cap_add=("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"),
        labels=labels(settings, NAME),
        stop_grace_s=30,
    )
