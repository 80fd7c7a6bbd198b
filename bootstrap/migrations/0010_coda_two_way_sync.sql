-- Coda <-> PostgreSQL, against Coda's published API contract (https://coda.io/apis/v1/openapi.yaml).
--
-- Coda -> PostgreSQL (workflow coda-sync). All sync state lives here, so n8n only makes HTTP calls and waits:
-- * Values are keyed by column ID (stable) and read with valueFormat=rich (arrays, references and people keep
--   their structure); plain text loses Coda's ``` escaping. Column names are kept as labels in
--   client.entity_types.coda_columns ({"c-id": "Name"}), refreshed at the start of every full pass.
-- * Deletions: a syncToken listing returns only changed rows and Coda documents no tombstones, so a row deleted
--   in Coda is seen as missing from a COMPLETE listing. Each table alternates incremental listings (syncToken)
--   with a full pass at most every N seconds; at the end of a full pass, entities not seen in it are SOFT-deleted
--   (client.entities.deleted_at set, attributes kept: notifications and history may still refer to them). A row
--   that comes back (undo in Coda) is un-deleted.
-- * Resume: the next page token is stored with the page's rows in one transaction (ops.sync_cursors, source
--   'coda', scope '<doc>/<table>'), so a 429, a crash or a restart resumes at the page that failed; re-applying a
--   page changes nothing (upsert on (entity_type_id, coda_row_id)).
-- * Rate limits (reads: 100 requests / 6 s): a 429 or 5xx waits Retry-After when Coda sends it, else
--   6 s * 2^(attempt-1) with full jitter in [50 %, 100 %] (capped at 60 s); after max attempts the run gives the
--   table up with its page token kept, and the next run resumes there.
-- * One run per table at a time: a lease (run id + expiry) in the cursor; a dead run's lease expires.
--
-- PostgreSQL -> Coda (workflow coda-push): ops.coda_outbox, filled by triggers on the rows the platform owns
-- (notification status, inbound messages, daily aggregates); the push upserts them with keyColumns and deletes
-- outbox rows only after Coda's mutation status says completed. PostgreSQL wins for the columns it pushes
-- (they mirror platform state); columns it does not push (a user's notes) are never written.
--
-- Everything runs as kaizenity_sync (NOLOGIN, BYPASSRLS) through these SECURITY DEFINER functions only; the
-- application role gets EXECUTE, never an RLS bypass. client.upsert_coda_rows (0007/0009) is left as it is.
SET LOCAL ROLE kaizenity_owner;

ALTER TABLE client.entities
    ADD COLUMN deleted_at     timestamptz,
    ADD COLUMN coda_seen_pass bigint;
ALTER TABLE client.entity_types ADD COLUMN coda_columns jsonb NOT NULL DEFAULT '{}';

CREATE TABLE ops.coda_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    push_table text NOT NULL,             -- the mapping's name (workflows/coda-tables.yaml)
    row_key    text NOT NULL,             -- the value of the key column
    fields     jsonb NOT NULL,            -- field name -> value (mapped to Coda column ids by the push)
    queued_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON ops.coda_outbox (push_table, id);
GRANT SELECT ON ops.coda_outbox TO kaizenity_app;

RESET ROLE;
GRANT USAGE ON SCHEMA ops TO kaizenity_sync;
GRANT SELECT, INSERT, UPDATE ON ops.sync_cursors TO kaizenity_sync;
GRANT SELECT, INSERT, DELETE ON ops.coda_outbox TO kaizenity_sync;
GRANT SELECT ON client.spaces TO kaizenity_sync;
GRANT UPDATE (coda_columns) ON client.entity_types TO kaizenity_sync;
GRANT SELECT, INSERT, UPDATE ON client.entities TO kaizenity_sync;
GRANT SELECT ON ops.notifications, ops.messages TO kaizenity_sync;
GRANT USAGE ON SCHEMA analytics TO kaizenity_sync;
GRANT SELECT ON analytics.daily_aggregates TO kaizenity_sync;
SET LOCAL ROLE kaizenity_owner;

-- A rich value as stored: plain text without Coda's ``` escaping; arrays element by element; the rest as is.
CREATE FUNCTION client.coda_value(v jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(v) = 'string' AND (v #>> '{}') ~ '^```.*```$' AND length(v #>> '{}') >= 6 THEN
        RETURN to_jsonb(substr(v #>> '{}', 4, length(v #>> '{}') - 6));
    ELSIF jsonb_typeof(v) = 'array' THEN
        RETURN coalesce((SELECT jsonb_agg(client.coda_value(e) ORDER BY o)
                         FROM jsonb_array_elements(v) WITH ORDINALITY AS x (e, o)), '[]'::jsonb);
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION client.coda_cursor(p_cursor text) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN p_cursor LIKE '{%' THEN p_cursor::jsonb ELSE '{}'::jsonb END $$;

-- The request a run makes next for the table it holds: {action: rows|columns|done, doc, table, query, wait_seconds}.
CREATE FUNCTION client.coda_sync_action(p_scope text, p_state jsonb, p_wait numeric DEFAULT 0) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'action', CASE WHEN p_state ->> 'page_token' IS NULL AND p_state ->> 'mode' = 'full'
                            AND NOT coalesce((p_state ->> 'columns_done')::boolean, false) THEN 'columns' ELSE 'rows' END,
        'doc', split_part(p_scope, '/', 1), 'table', split_part(p_scope, '/', 2), 'wait_seconds', p_wait,
        'query', CASE
            WHEN p_state ->> 'page_token' IS NOT NULL THEN jsonb_build_object('pageToken', p_state ->> 'page_token')
            WHEN p_state ->> 'mode' = 'incremental' THEN jsonb_build_object(
                'valueFormat', 'rich', 'limit', p_state -> 'limit', 'syncToken', p_state ->> 'sync_token')
            ELSE jsonb_build_object('valueFormat', 'rich', 'limit', p_state -> 'limit') END)
$$;

-- Claim the next table this run may sync (one at a time) and say what to request; {action: done} when none.
CREATE FUNCTION client.coda_sync_next(p_run text, p_full_every_seconds integer, p_limit integer DEFAULT 100)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scope text;
    v_state jsonb;
    v_full boolean;
BEGIN
    INSERT INTO ops.sync_cursors (source, scope, cursor)
    SELECT DISTINCT 'coda', s.coda_doc_id || '/' || t.coda_table_id, '{}'
    FROM client.entity_types AS t JOIN client.spaces AS s ON s.id = t.space_id
    WHERE s.coda_doc_id IS NOT NULL AND t.coda_table_id IS NOT NULL
    ON CONFLICT (source, scope) DO NOTHING;

    SELECT c.scope, client.coda_cursor(c.cursor) INTO v_scope, v_state
    FROM ops.sync_cursors AS c
    WHERE c.source = 'coda'
      AND EXISTS (SELECT 1 FROM client.entity_types AS t JOIN client.spaces AS s ON s.id = t.space_id
                  WHERE s.coda_doc_id || '/' || t.coda_table_id = c.scope)
      AND coalesce(client.coda_cursor(c.cursor) ->> 'done_by', '') <> p_run
      AND (client.coda_cursor(c.cursor) ->> 'lease_run' IS NULL
           OR (client.coda_cursor(c.cursor) ->> 'lease_until')::timestamptz < now())
    ORDER BY c.updated_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF v_scope IS NULL THEN
        RETURN jsonb_build_object('action', 'done');
    END IF;

    IF v_state ->> 'page_token' IS NULL THEN  -- a new listing (else: resume the one in progress)
        v_full := v_state ->> 'sync_token' IS NULL OR v_state ->> 'full_done_at' IS NULL
                  OR (v_state ->> 'full_done_at')::timestamptz < now() - make_interval(secs => p_full_every_seconds);
        v_state := v_state || jsonb_build_object(
            'mode', CASE WHEN v_full THEN 'full' ELSE 'incremental' END,
            'pass', coalesce((v_state ->> 'pass')::bigint, 0) + CASE WHEN v_full THEN 1 ELSE 0 END,
            'columns_done', false, 'limit', p_limit);
    END IF;
    v_state := v_state || jsonb_build_object('lease_run', p_run, 'lease_until', now() + interval '2 minutes',
                                             'attempts', 0);
    UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda' AND scope = v_scope;
    RETURN client.coda_sync_action(v_scope, v_state);
END
$$;

-- The state of the table a run holds (and its scope), locked.
CREATE FUNCTION client.coda_sync_held(p_run text, OUT scope text, OUT state jsonb)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.scope, client.coda_cursor(c.cursor) FROM ops.sync_cursors AS c
    WHERE c.source = 'coda' AND client.coda_cursor(c.cursor) ->> 'lease_run' = p_run
    ORDER BY c.updated_at DESC LIMIT 1 FOR UPDATE
$$;

-- A non-2xx answer: wait and retry (429, 5xx: Retry-After, else exponential backoff with jitter), or give the
-- table up for this run keeping its page token (too many attempts), or forget stale tokens (400).
CREATE FUNCTION client.coda_sync_failed(p_run text, p_status integer, p_retry_after text, p_max_attempts integer,
                                        p_error jsonb)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scope text;
    v_state jsonb;
    v_attempts integer;
    v_wait numeric;
BEGIN
    SELECT h.scope, h.state INTO v_scope, v_state FROM client.coda_sync_held(p_run) AS h;
    IF v_scope IS NULL THEN
        RETURN jsonb_build_object('action', 'done');
    END IF;
    v_attempts := coalesce((v_state ->> 'attempts')::integer, 0) + 1;
    v_state := v_state || jsonb_build_object('attempts', v_attempts, 'last_status', p_status,
                                             'last_error', left(coalesce(p_error ->> 'message', p_error::text), 500),
                                             'last_error_at', now());
    IF (p_status = 429 OR p_status >= 500 OR p_status = 0) AND v_attempts < p_max_attempts THEN
        v_wait := CASE WHEN p_retry_after ~ '^\d+(\.\d+)?$' THEN least(p_retry_after::numeric, 120)
                       ELSE round((least(60, 6 * 2 ^ (v_attempts - 1)) * (0.5 + random() / 2))::numeric, 2) END;
        v_state := v_state || jsonb_build_object('lease_until', now() + make_interval(secs => v_wait + 120));
        UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda' AND scope = v_scope;
        RETURN client.coda_sync_action(v_scope, v_state, v_wait);
    END IF;
    IF p_status = 400 THEN  -- an expired page or sync token: start over with a full pass
        v_state := v_state - 'page_token' - 'sync_token' - 'full_done_at';
    END IF;
    v_state := (v_state - 'lease_run' - 'lease_until') || jsonb_build_object('done_by', p_run);
    UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda' AND scope = v_scope;
    RETURN jsonb_build_object('action', 'next');
END
$$;

-- Column labels for the held table (GET .../columns), then the first page.
CREATE FUNCTION client.coda_sync_columns(p_run text, p_body jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scope text;
    v_state jsonb;
BEGIN
    SELECT h.scope, h.state INTO v_scope, v_state FROM client.coda_sync_held(p_run) AS h;
    IF v_scope IS NULL THEN
        RETURN jsonb_build_object('action', 'done');
    END IF;
    UPDATE client.entity_types AS t
    SET coda_columns = (SELECT coalesce(jsonb_object_agg(c ->> 'id', c ->> 'name'), '{}'::jsonb)
                        FROM jsonb_array_elements(coalesce(p_body -> 'items', '[]'::jsonb)) AS c)
    FROM client.spaces AS s
    WHERE s.id = t.space_id AND s.coda_doc_id || '/' || t.coda_table_id = v_scope;
    v_state := v_state || jsonb_build_object('columns_done', true, 'attempts', 0);
    UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda' AND scope = v_scope;
    RETURN client.coda_sync_action(v_scope, v_state);
END
$$;

-- One page of rows (200): upsert, mark seen, store the next page token in the same transaction; at the end of a
-- listing store nextSyncToken, and after a full pass soft-delete what it did not see.
CREATE FUNCTION client.coda_sync_page(p_run text, p_page jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scope text;
    v_state jsonb;
    v_pass bigint;
    v_full boolean;
    v_changed integer;
    v_deleted integer := 0;
BEGIN
    SELECT h.scope, h.state INTO v_scope, v_state FROM client.coda_sync_held(p_run) AS h;
    IF v_scope IS NULL THEN
        RETURN jsonb_build_object('action', 'done');
    END IF;
    v_pass := (v_state ->> 'pass')::bigint;
    v_full := v_state ->> 'mode' = 'full';

    WITH types AS (
        SELECT t.id, t.tenant_id FROM client.entity_types AS t JOIN client.spaces AS s ON s.id = t.space_id
        WHERE s.coda_doc_id || '/' || t.coda_table_id = v_scope
    ), items AS (
        SELECT i ->> 'id' AS row_id,
               coalesce((SELECT jsonb_object_agg(k, client.coda_value(v)) FROM jsonb_each(i -> 'values') AS x (k, v)),
                        '{}'::jsonb) AS attributes
        FROM jsonb_array_elements(coalesce(p_page -> 'items', '[]'::jsonb)) AS i
        WHERE i ? 'id'
    ), upserted AS (
        INSERT INTO client.entities AS e (tenant_id, entity_type_id, attributes, coda_row_id, synced_at, updated_at,
                                          coda_seen_pass, deleted_at)
        SELECT types.tenant_id, types.id, items.attributes, items.row_id, now(), now(),
               CASE WHEN v_full THEN v_pass END, NULL
        FROM items CROSS JOIN types
        ON CONFLICT (entity_type_id, coda_row_id) DO UPDATE
            SET attributes = EXCLUDED.attributes, synced_at = now(), deleted_at = NULL,
                coda_seen_pass = coalesce(EXCLUDED.coda_seen_pass, e.coda_seen_pass),
                updated_at = CASE WHEN e.attributes IS DISTINCT FROM EXCLUDED.attributes OR e.deleted_at IS NOT NULL
                                  THEN now() ELSE e.updated_at END
        RETURNING (xmax = 0 OR e.updated_at = now()) AS changed
    )
    SELECT count(*) FILTER (WHERE changed) INTO v_changed FROM upserted;

    v_state := v_state || jsonb_build_object('attempts', 0, 'rows_changed',
                                             coalesce((v_state ->> 'rows_changed')::integer, 0) + v_changed);
    IF p_page ->> 'nextPageToken' IS NOT NULL THEN
        v_state := v_state || jsonb_build_object('page_token', p_page ->> 'nextPageToken',
                                                 'lease_until', now() + interval '2 minutes');
        UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda' AND scope = v_scope;
        RETURN client.coda_sync_action(v_scope, v_state);
    END IF;

    IF v_full THEN
        UPDATE client.entities AS e SET deleted_at = now(), updated_at = now()
        FROM client.entity_types AS t JOIN client.spaces AS s ON s.id = t.space_id
        WHERE e.entity_type_id = t.id AND s.coda_doc_id || '/' || t.coda_table_id = v_scope
          AND e.deleted_at IS NULL AND e.coda_row_id IS NOT NULL
          AND (e.coda_seen_pass IS NULL OR e.coda_seen_pass < v_pass);
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
        v_state := v_state || jsonb_build_object('full_done_at', now());
    END IF;
    v_state := (v_state - 'page_token' - 'lease_run' - 'lease_until' - 'rows_changed')
               || jsonb_build_object('sync_token', p_page ->> 'nextSyncToken', 'done_by', p_run,
                                     'last_done_at', now(), 'last_changed', coalesce((v_state ->> 'rows_changed')::integer, 0),
                                     'last_deleted', v_deleted, 'last_mode', v_state ->> 'mode');
    UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda' AND scope = v_scope;
    RETURN jsonb_build_object('action', 'next');
END
$$;

-- ---- PostgreSQL -> Coda -------------------------------------------------------------------------------------
-- The outbox: what changed in the rows the platform owns, queued in the same transaction as the change.
CREATE FUNCTION ops.coda_enqueue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'notifications' THEN
        INSERT INTO ops.coda_outbox (push_table, row_key, fields) VALUES ('notifications', NEW.id::text,
            jsonb_build_object('id', NEW.id, 'tenant_id', NEW.tenant_id, 'channel', NEW.channel,
                               'recipient', NEW.recipient, 'status', NEW.status, 'attempts', NEW.attempts,
                               'last_error', NEW.last_error, 'sent_at', NEW.sent_at, 'changed_at', now()));
    ELSIF TG_TABLE_NAME = 'messages' THEN
        INSERT INTO ops.coda_outbox (push_table, row_key, fields) VALUES ('inbound_messages',
            NEW.channel || ':' || NEW.idempotency_key,
            jsonb_build_object('key', NEW.channel || ':' || NEW.idempotency_key, 'tenant_id', NEW.tenant_id,
                               'space', (SELECT s.name FROM client.spaces AS s WHERE s.tenant_id = NEW.tenant_id
                                         ORDER BY s.created_at LIMIT 1),
                               'channel', NEW.channel, 'chat_id', NEW.chat_id, 'body', NEW.body,
                               'received_at', NEW.received_at));
    ELSIF TG_TABLE_NAME = 'daily_aggregates' THEN
        INSERT INTO ops.coda_outbox (push_table, row_key, fields) VALUES ('daily_aggregates',
            NEW.day || '/' || NEW.tenant_id || '/' || NEW.name,
            jsonb_build_object('key', NEW.day || '/' || NEW.tenant_id || '/' || NEW.name, 'day', NEW.day,
                               'tenant_id', NEW.tenant_id, 'name', NEW.name, 'events', NEW.events));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER coda_outbox AFTER INSERT OR UPDATE OF status, attempts, last_error ON ops.notifications
    FOR EACH ROW EXECUTE FUNCTION ops.coda_enqueue();
CREATE TRIGGER coda_outbox AFTER INSERT ON ops.messages
    FOR EACH ROW WHEN (NEW.direction = 'inbound') EXECUTE FUNCTION ops.coda_enqueue();
CREATE TRIGGER coda_outbox AFTER INSERT OR UPDATE ON analytics.daily_aggregates
    FOR EACH ROW EXECUTE FUNCTION ops.coda_enqueue();

-- What the push does next for the table a run holds: {action: upsert|status|next|done, doc, table, body,
-- request_id, wait_seconds}. p_tables is the "push" section of workflows/coda-tables.yaml.
CREATE FUNCTION ops.coda_push_action(p_scope text, p_state jsonb, p_wait numeric DEFAULT 0) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('action', CASE WHEN p_state ->> 'request_id' IS NULL THEN 'upsert' ELSE 'status' END,
                              'doc', p_state ->> 'doc', 'table', p_state ->> 'table', 'body', p_state -> 'body',
                              'request_id', p_state ->> 'request_id', 'wait_seconds', p_wait)
$$;

-- Claim the next push table with queued rows: at most p_batch rows (the newest state of each key), as Coda
-- cells keyed by column id, with keyColumns = the table's key column.
CREATE FUNCTION ops.coda_push_next(p_run text, p_doc text, p_tables jsonb, p_batch integer DEFAULT 100)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text;
    v_spec jsonb;
    v_state jsonb;
    v_upto bigint;
    v_rows jsonb;
BEGIN
    FOR v_name, v_spec IN SELECT key, value FROM jsonb_each(coalesce(p_tables, '{}'::jsonb)) ORDER BY key LOOP
        INSERT INTO ops.sync_cursors (source, scope, cursor) VALUES ('coda-push', v_name, '{}')
        ON CONFLICT (source, scope) DO NOTHING;
        SELECT client.coda_cursor(cursor) INTO v_state FROM ops.sync_cursors
        WHERE source = 'coda-push' AND scope = v_name FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN v_state IS NULL OR v_state ->> 'done_by' = p_run
            OR (v_state ->> 'lease_run' IS NOT NULL AND (v_state ->> 'lease_until')::timestamptz > now());
        IF v_state ->> 'request_id' IS NOT NULL OR v_state -> 'body' IS NOT NULL THEN
            -- a batch of a run that died: ask about its mutation (or send it again: upserts are idempotent)
            v_state := v_state || jsonb_build_object('lease_run', p_run, 'lease_until', now() + interval '2 minutes');
            UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now()
            WHERE source = 'coda-push' AND scope = v_name;
            RETURN ops.coda_push_action(v_name, v_state);
        END IF;
        WITH batch AS (
            SELECT DISTINCT ON (row_key) id, row_key, fields FROM ops.coda_outbox
            WHERE push_table = v_name ORDER BY row_key, id DESC
        ), limited AS (
            SELECT * FROM batch ORDER BY id LIMIT p_batch
        )
        SELECT max(id), jsonb_agg(jsonb_build_object('cells', (
                   SELECT jsonb_agg(jsonb_build_object('column', col.value, 'value', limited.fields -> col.key))
                   FROM jsonb_each_text(v_spec -> 'columns') AS col)) ORDER BY id)
        INTO v_upto, v_rows FROM limited;
        CONTINUE WHEN v_upto IS NULL;
        v_state := jsonb_build_object(
            'lease_run', p_run, 'lease_until', now() + interval '2 minutes', 'upto', v_upto,
            'doc', coalesce(v_spec ->> 'doc', p_doc), 'table', v_spec ->> 'table', 'attempts', 0,
            'body', jsonb_build_object('rows', v_rows,
                                       'keyColumns', jsonb_build_array(v_spec -> 'columns' ->> (v_spec ->> 'key')))
        ) || (v_state - 'done_by' - 'lease_run' - 'lease_until' - 'request_id' - 'upto' - 'body');
        UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda-push' AND scope = v_name;
        RETURN ops.coda_push_action(v_name, v_state);
    END LOOP;
    RETURN jsonb_build_object('action', 'done');
END
$$;

CREATE FUNCTION ops.coda_push_held(p_run text, OUT scope text, OUT state jsonb)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.scope, client.coda_cursor(c.cursor) FROM ops.sync_cursors AS c
    WHERE c.source = 'coda-push' AND client.coda_cursor(c.cursor) ->> 'lease_run' = p_run
    ORDER BY c.updated_at DESC LIMIT 1 FOR UPDATE
$$;

-- Coda's answer to the upsert (202 + requestId) or to GET /mutationStatus/{requestId} ({completed}); 429/5xx
-- back off (Retry-After, else exponential with jitter) and repeat the same request: an upsert on key columns
-- applied twice leaves one row. Outbox rows are deleted only once Coda says the mutation completed.
CREATE FUNCTION ops.coda_push_answer(p_run text, p_status integer, p_body jsonb, p_retry_after text,
                                     p_max_attempts integer)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scope text;
    v_state jsonb;
    v_attempts integer;
    v_wait numeric;
BEGIN
    SELECT h.scope, h.state INTO v_scope, v_state FROM ops.coda_push_held(p_run) AS h;
    IF v_scope IS NULL THEN
        RETURN jsonb_build_object('action', 'done');
    END IF;
    v_attempts := coalesce((v_state ->> 'attempts')::integer, 0) + 1;
    IF p_status = 202 AND p_body ->> 'requestId' IS NOT NULL THEN
        v_state := v_state || jsonb_build_object('request_id', p_body ->> 'requestId', 'attempts', 0);
        v_wait := 1;
    ELSIF p_status = 200 AND (p_body ->> 'completed')::boolean THEN
        DELETE FROM ops.coda_outbox WHERE push_table = v_scope AND id <= (v_state ->> 'upto')::bigint;
        v_state := (v_state - 'lease_run' - 'lease_until' - 'request_id' - 'body' - 'upto' - 'attempts')
                   || jsonb_build_object('done_by', p_run, 'last_done_at', now(), 'last_request_id', v_state ->> 'request_id');
        UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda-push' AND scope = v_scope;
        RETURN jsonb_build_object('action', 'next', 'wait_seconds', 0.6);  -- writes: 10 per 6 s
    ELSIF p_status = 200 AND v_attempts < p_max_attempts * 3 THEN  -- not completed yet: ask again
        v_state := v_state || jsonb_build_object('attempts', v_attempts);
        v_wait := least(5, v_attempts);
    ELSIF (p_status = 429 OR p_status >= 500 OR p_status = 0) AND v_attempts < p_max_attempts THEN
        v_state := v_state || jsonb_build_object('attempts', v_attempts, 'last_status', p_status);
        v_wait := CASE WHEN p_retry_after ~ '^\d+(\.\d+)?$' THEN least(p_retry_after::numeric, 120)
                       ELSE round((least(60, 6 * 2 ^ (v_attempts - 1)) * (0.5 + random() / 2))::numeric, 2) END;
    ELSE  -- give up for this run; the batch stays (in the cursor and the outbox) for the next run
        v_state := (v_state - 'lease_run' - 'lease_until')
                   || jsonb_build_object('done_by', p_run, 'last_status', p_status,
                                         'last_error', left(coalesce(p_body ->> 'message', p_body::text), 500));
        IF p_status = 404 AND v_state ->> 'request_id' IS NOT NULL THEN  -- status forgotten (> 1 day): resend
            v_state := v_state - 'request_id';
        END IF;
        UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda-push' AND scope = v_scope;
        RETURN jsonb_build_object('action', 'next', 'wait_seconds', 0);
    END IF;
    v_state := v_state || jsonb_build_object('lease_until', now() + make_interval(secs => v_wait + 120));
    UPDATE ops.sync_cursors SET cursor = v_state::text, updated_at = now() WHERE source = 'coda-push' AND scope = v_scope;
    RETURN ops.coda_push_action(v_scope, v_state, v_wait);
END
$$;

RESET ROLE;
ALTER FUNCTION client.coda_value(jsonb) OWNER TO kaizenity_sync;
ALTER FUNCTION client.coda_cursor(text) OWNER TO kaizenity_sync;
ALTER FUNCTION client.coda_sync_action(text, jsonb, numeric) OWNER TO kaizenity_sync;
ALTER FUNCTION client.coda_sync_next(text, integer, integer) OWNER TO kaizenity_sync;
ALTER FUNCTION client.coda_sync_held(text) OWNER TO kaizenity_sync;
ALTER FUNCTION client.coda_sync_failed(text, integer, text, integer, jsonb) OWNER TO kaizenity_sync;
ALTER FUNCTION client.coda_sync_columns(text, jsonb) OWNER TO kaizenity_sync;
ALTER FUNCTION client.coda_sync_page(text, jsonb) OWNER TO kaizenity_sync;
ALTER FUNCTION ops.coda_enqueue() OWNER TO kaizenity_sync;
ALTER FUNCTION ops.coda_push_action(text, jsonb, numeric) OWNER TO kaizenity_sync;
ALTER FUNCTION ops.coda_push_next(text, text, jsonb, integer) OWNER TO kaizenity_sync;
ALTER FUNCTION ops.coda_push_held(text) OWNER TO kaizenity_sync;
ALTER FUNCTION ops.coda_push_answer(text, integer, jsonb, text, integer) OWNER TO kaizenity_sync;
REVOKE ALL ON FUNCTION ops.coda_enqueue(), ops.coda_push_next(text, text, jsonb, integer), ops.coda_push_held(text),
    ops.coda_push_answer(text, integer, jsonb, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.coda_push_next(text, text, jsonb, integer),
    ops.coda_push_answer(text, integer, jsonb, text, integer) TO kaizenity_app;
REVOKE ALL ON FUNCTION client.coda_sync_next(text, integer, integer), client.coda_sync_held(text),
    client.coda_sync_failed(text, integer, text, integer, jsonb), client.coda_sync_columns(text, jsonb),
    client.coda_sync_page(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client.coda_sync_next(text, integer, integer),
    client.coda_sync_failed(text, integer, text, integer, jsonb), client.coda_sync_columns(text, jsonb),
    client.coda_sync_page(text, jsonb) TO kaizenity_app;
