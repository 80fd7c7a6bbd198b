-- Base backups the backup sidecar completed and verified (infra/services/backup_agent.sh writes a row after
-- pg_verifybackup passed). The `backups` health probe reads the age of the newest row over its ordinary
-- database connection, so it needs no access to the Docker engine or the archive volume.
SET LOCAL ROLE kaizenity_owner;

CREATE TABLE ops.base_backups (
    stamp       text PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    start_lsn   pg_lsn NOT NULL,
    verified    boolean NOT NULL DEFAULT true,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON ops.base_backups (finished_at DESC);
GRANT SELECT ON ops.base_backups TO kaizenity_analytics;
