-- Operational data: messages, the notification queue, workflow runs, sync cursors, heartbeats, dead letters.
SET LOCAL ROLE kaizenity_owner;

CREATE SCHEMA ops;

-- A messenger that retries a delivery sends the same message id again: (channel, direction, idempotency_key)
-- is unique, so `INSERT ... ON CONFLICT DO NOTHING` stores it once.
CREATE TABLE ops.messages (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        uuid REFERENCES core.tenants (id) ON DELETE SET NULL,
    channel          text NOT NULL CHECK (channel IN ('telegram', 'slack', 'whatsapp', 'email')),
    direction        text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    idempotency_key  text NOT NULL,
    chat_id          text,
    user_identity_id bigint REFERENCES core.user_identities (id) ON DELETE SET NULL,
    body             text,
    payload          jsonb NOT NULL DEFAULT '{}',
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, direction, idempotency_key)
);
CREATE INDEX ON ops.messages (tenant_id, received_at);

-- Claim with: SELECT ... WHERE status = 'pending' AND next_attempt_at <= now()
--             ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT n
CREATE TABLE ops.notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid REFERENCES core.tenants (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('telegram', 'slack', 'whatsapp', 'email')),
    recipient       text NOT NULL,
    body            text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notifications_due ON ops.notifications (next_attempt_at) WHERE status = 'pending';

CREATE TABLE ops.workflow_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow     text NOT NULL,
    execution_id text,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON ops.workflow_runs (workflow, started_at);

CREATE TABLE ops.sync_cursors (
    source     text NOT NULL,
    scope      text NOT NULL,
    cursor     text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, scope)
);

CREATE TABLE ops.heartbeats (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source  text NOT NULL,
    beat_at timestamptz NOT NULL DEFAULT now(),
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON ops.heartbeats (source, beat_at DESC);

CREATE TABLE ops.dead_letters (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source     text NOT NULL,
    source_id  text,
    payload    jsonb NOT NULL DEFAULT '{}',
    error      text,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

GRANT USAGE ON SCHEMA ops TO kaizenity_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ops TO kaizenity_app;
ALTER DEFAULT PRIVILEGES FOR ROLE kaizenity_owner IN SCHEMA ops
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO kaizenity_app;
