-- Monitoring's own database role (issue 18): the exporters no longer connect as the PostgreSQL superuser.
--   kaizenity_monitoring  NOLOGIN group: pg_monitor (PostgreSQL's predefined role = pg_read_all_settings,
--                         pg_read_all_stats, pg_stat_scan_tables: every built-in collector of postgres_exporter and
--                         the health probes' pg_stat_activity / pg_database_size) and read access to exactly what
--                         the rest reads: postgres_exporter's custom query (monitoring/postgres-queries.yml:
--                         ops.workflow_errors) and the health exporter's probes (healthchecks/: the migration history
--                         for the schema check, ops.heartbeats, ops.base_backups). No write, no DDL, no other table.
-- The login (kaizenity_monitor, password monitoringDatabasePassword) is per environment, so it is made after the
-- migrations, like the workflows' login (bootstrap/app_login.py), and only where monitoring is enabled.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kaizenity_monitoring') THEN
        CREATE ROLE kaizenity_monitoring NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO kaizenity_monitoring', current_database());
END
$$;
GRANT pg_monitor TO kaizenity_monitoring;
-- The migration history belongs to the runner's (super)user, not to kaizenity_owner: granted before the role switch.
GRANT USAGE ON SCHEMA kaizenity_meta TO kaizenity_monitoring;
GRANT SELECT ON kaizenity_meta.schema_migrations TO kaizenity_monitoring;

SET LOCAL ROLE kaizenity_owner;

GRANT USAGE ON SCHEMA ops TO kaizenity_monitoring;
GRANT SELECT ON ops.workflow_errors, ops.heartbeats, ops.base_backups TO kaizenity_monitoring;
