-- Roles. Group roles only (NOLOGIN): login users are created per environment and granted one of these.
--   kaizenity_owner      owns every schema object; migrations create objects as this role.
--   kaizenity_app        what n8n workflows use: read/write core, client and ops; write analytics events.
--   kaizenity_analytics  read-only: the analytics schema and tenant names, nothing else.
-- No application role owns a table, so none can drop or alter one.
DO $$
DECLARE
    wanted text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['kaizenity_owner', 'kaizenity_app', 'kaizenity_analytics'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
        END IF;
    END LOOP;
    EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO kaizenity_owner', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO kaizenity_app', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO kaizenity_analytics', current_database());
END
$$;

-- Nobody but the owner creates objects in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE EXTENSION IF NOT EXISTS pgcrypto;
