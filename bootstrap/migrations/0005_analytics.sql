-- Analytics: raw events partitioned by month, daily aggregates; the read-only role sees this schema only
-- (and tenant names in core.tenants).
SET LOCAL ROLE kaizenity_owner;

CREATE SCHEMA analytics;

CREATE TABLE analytics.events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id   uuid,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    name        text NOT NULL,
    properties  jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Rows outside every monthly partition land here instead of failing the insert.
CREATE TABLE analytics.events_default PARTITION OF analytics.events DEFAULT;

-- Creates the monthly partitions from `months_back` before to `months_ahead` after the current month.
-- Idempotent; run it from a schedule (the analytics-rollup workflow does) so next month always exists.
CREATE FUNCTION analytics.ensure_event_partitions(months_back int DEFAULT 1, months_ahead int DEFAULT 3)
RETURNS int LANGUAGE plpgsql
SECURITY DEFINER SET search_path = analytics, pg_temp  -- the app role may call it; partitions need the owner
AS $$
DECLARE
    month date;
    created int := 0;
    part text;
BEGIN
    FOR i IN -months_back..months_ahead LOOP
        month := (date_trunc('month', now()) + make_interval(months => i))::date;
        part := format('events_%s', to_char(month, 'YYYY_MM'));
        IF to_regclass(format('analytics.%I', part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE analytics.%I PARTITION OF analytics.events FOR VALUES FROM (%L) TO (%L)',
                part, month, (month + interval '1 month')::date);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
SELECT analytics.ensure_event_partitions();
CREATE INDEX ON analytics.events (tenant_id, occurred_at);
CREATE INDEX ON analytics.events (name, occurred_at);

CREATE TABLE analytics.daily_aggregates (
    day        date NOT NULL,
    tenant_id  uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    name       text NOT NULL,
    events     bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, tenant_id, name)
);

GRANT USAGE ON SCHEMA analytics TO kaizenity_app, kaizenity_analytics;
GRANT SELECT, INSERT ON analytics.events TO kaizenity_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.daily_aggregates TO kaizenity_app;
GRANT EXECUTE ON FUNCTION analytics.ensure_event_partitions(int, int) TO kaizenity_app;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO kaizenity_analytics;
ALTER DEFAULT PRIVILEGES FOR ROLE kaizenity_owner IN SCHEMA analytics
    GRANT SELECT ON TABLES TO kaizenity_analytics;
