-- Monitoring's own database role (issue 18): postgres_exporter no longer connects as the PostgreSQL superuser.
--   kaizenity_monitoring  NOLOGIN group: pg_monitor (PostgreSQL's predefined role = pg_read_all_settings,
--                         pg_read_all_stats, pg_stat_scan_tables: every built-in collector of postgres_exporter)
--                         and read access to what the exporter's custom query reads (monitoring/postgres-queries.yml:
--                         ops.workflow_errors). No write, no DDL, no other table.
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

SET LOCAL ROLE kaizenity_owner;

GRANT USAGE ON SCHEMA ops TO kaizenity_monitoring;
GRANT SELECT ON ops.workflow_errors TO kaizenity_monitoring;
