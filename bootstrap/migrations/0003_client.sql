-- Client space: each tenant's workspace (bound to a Coda doc) and the typed entities it mirrors.
-- Row-level security: a session sees and changes only the rows of the tenant it is bound to with
--   SELECT set_config('app.tenant_id', '<tenant uuid>', false)   -- or SET LOCAL in a transaction
-- and a session bound to no tenant sees nothing. FORCE makes the policies apply to the table owner too.
SET LOCAL ROLE kaizenity_owner;

CREATE SCHEMA client;

CREATE FUNCTION client.current_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('app.tenant_id', true), '')::uuid
$$;

CREATE TABLE client.spaces (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES core.tenants (id) ON DELETE CASCADE DEFAULT client.current_tenant(),
    name        text NOT NULL,
    coda_doc_id text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, tenant_id)
);

CREATE TABLE client.entity_types (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL DEFAULT client.current_tenant(),
    space_id      uuid NOT NULL,
    name          text NOT NULL,
    coda_table_id text,
    schema        jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (space_id, name),
    UNIQUE (id, tenant_id),
    -- the type's tenant is its space's tenant: no cross-tenant reference can be stored
    FOREIGN KEY (space_id, tenant_id) REFERENCES client.spaces (id, tenant_id) ON DELETE CASCADE
);

CREATE TABLE client.entities (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL DEFAULT client.current_tenant(),
    entity_type_id uuid NOT NULL,
    attributes     jsonb NOT NULL DEFAULT '{}',
    coda_row_id    text,
    synced_at      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entity_type_id, coda_row_id),
    FOREIGN KEY (entity_type_id, tenant_id) REFERENCES client.entity_types (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX ON client.entities (tenant_id);
CREATE INDEX ON client.entities USING gin (attributes jsonb_path_ops);

ALTER TABLE client.spaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE client.spaces FORCE ROW LEVEL SECURITY;
ALTER TABLE client.entity_types ENABLE ROW LEVEL SECURITY;
ALTER TABLE client.entity_types FORCE ROW LEVEL SECURITY;
ALTER TABLE client.entities ENABLE ROW LEVEL SECURITY;
ALTER TABLE client.entities FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON client.spaces
    USING (tenant_id = client.current_tenant()) WITH CHECK (tenant_id = client.current_tenant());
CREATE POLICY tenant_isolation ON client.entity_types
    USING (tenant_id = client.current_tenant()) WITH CHECK (tenant_id = client.current_tenant());
CREATE POLICY tenant_isolation ON client.entities
    USING (tenant_id = client.current_tenant()) WITH CHECK (tenant_id = client.current_tenant());

GRANT USAGE ON SCHEMA client TO kaizenity_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA client TO kaizenity_app;
ALTER DEFAULT PRIVILEGES FOR ROLE kaizenity_owner IN SCHEMA client
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO kaizenity_app;
