-- Core system tables: tenants, users and their messenger identities, memberships, settings, audit log.
SET LOCAL ROLE kaizenity_owner;

CREATE SCHEMA core;

CREATE TABLE core.tenants (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name       text NOT NULL,
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE core.users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text NOT NULL,
    email        text UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per (messenger, account): the same Telegram account can never belong to two users.
CREATE TABLE core.user_identities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES core.users (id) ON DELETE CASCADE,
    channel     text NOT NULL CHECK (channel IN ('telegram', 'slack', 'whatsapp', 'email')),
    external_id text NOT NULL,
    username    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, external_id)
);
CREATE INDEX ON core.user_identities (user_id);

CREATE TABLE core.memberships (
    tenant_id  uuid NOT NULL REFERENCES core.tenants (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES core.users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX ON core.memberships (user_id);

-- Settings: platform-wide (tenant_id NULL) or per tenant.
CREATE TABLE core.settings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid REFERENCES core.tenants (id) ON DELETE CASCADE,
    key        text NOT NULL,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX settings_key_per_scope ON core.settings (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), key);

-- Append-only: rows can be added and read, never changed or removed (trigger + privileges).
CREATE TABLE core.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    tenant_id   uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    entity      text,
    entity_id   text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON core.audit_log (tenant_id, occurred_at);

CREATE FUNCTION core.audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'core.audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON core.audit_log
    FOR EACH ROW EXECUTE FUNCTION core.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON core.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION core.audit_log_is_append_only();

GRANT USAGE ON SCHEMA core TO kaizenity_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.tenants, core.users, core.user_identities, core.memberships, core.settings
    TO kaizenity_app;
GRANT SELECT, INSERT ON core.audit_log TO kaizenity_app;
GRANT USAGE ON SCHEMA core TO kaizenity_analytics;
GRANT SELECT (id, slug, name, status) ON core.tenants TO kaizenity_analytics;

-- Tables added to core later get the application's privileges without a grant of their own.
ALTER DEFAULT PRIVILEGES FOR ROLE kaizenity_owner IN SCHEMA core
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO kaizenity_app;
ALTER DEFAULT PRIVILEGES FOR ROLE kaizenity_owner IN SCHEMA core
    GRANT USAGE, SELECT ON SEQUENCES TO kaizenity_app;
