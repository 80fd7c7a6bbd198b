-- The Coda sync writes rows of many tenants, and client tables enforce row-level security per tenant. Instead of
-- letting the application role bypass RLS, one narrow function does it: it upserts the rows of one Coda table
-- into the entities of the entity types bound to that table (client.entity_types.coda_table_id), and nothing
-- else. It runs as kaizenity_sync (NOLOGIN, BYPASSRLS), which owns only this function.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kaizenity_sync') THEN
        CREATE ROLE kaizenity_sync NOLOGIN BYPASSRLS;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA client TO kaizenity_sync;
GRANT SELECT ON client.entity_types TO kaizenity_sync;
GRANT SELECT, INSERT, UPDATE ON client.entities TO kaizenity_sync;

SET LOCAL ROLE kaizenity_owner;

-- p_page: one page of Coda's "list rows" answer ({"items": [{"id", "values", ...}], "nextPageToken"?}).
-- Returns the number of entities inserted or changed (unchanged rows are not rewritten).
CREATE FUNCTION client.upsert_coda_rows(p_table_id text, p_page jsonb) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH rows AS (
        SELECT item FROM jsonb_array_elements(coalesce(p_page -> 'items', '[]'::jsonb)) AS item
        WHERE item ? 'id'
    ), changed AS (
        INSERT INTO client.entities (tenant_id, entity_type_id, attributes, coda_row_id, synced_at, updated_at)
        SELECT t.tenant_id, t.id, coalesce(rows.item -> 'values', '{}'::jsonb), rows.item ->> 'id', now(), now()
        FROM rows CROSS JOIN client.entity_types AS t
        WHERE t.coda_table_id = p_table_id
        ON CONFLICT (entity_type_id, coda_row_id) DO UPDATE
            SET attributes = EXCLUDED.attributes, synced_at = now(), updated_at = now()
            WHERE client.entities.attributes IS DISTINCT FROM EXCLUDED.attributes
        RETURNING 1
    )
    SELECT count(*)::integer FROM changed
$$;

RESET ROLE;
ALTER FUNCTION client.upsert_coda_rows(text, jsonb) OWNER TO kaizenity_sync;
REVOKE ALL ON FUNCTION client.upsert_coda_rows(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client.upsert_coda_rows(text, jsonb) TO kaizenity_app;
