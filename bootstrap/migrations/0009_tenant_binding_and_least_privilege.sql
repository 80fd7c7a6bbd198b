-- Least privilege for tenant isolation (security review, issue 14).
--
-- 1. A tenant binding a workflow cannot switch within a transaction. client.bind_tenant(tenant) records the
--    tenant in a temporary table owned by kaizenity_owner (the application role can neither write nor drop it,
--    and a look-alike table it creates itself is ignored: the owner is checked) and cleared at the end of the
--    transaction (ON COMMIT DELETE ROWS), so pooled connections (n8n's Postgres node) serve one tenant per
--    transaction. While bound, client.current_tenant() returns the binding and ignores app.tenant_id: a later
--    set_config('app.tenant_id', ...) in the same transaction changes nothing; a second bind to another tenant
--    raises. Sessions that never bind keep the older app.tenant_id behaviour (documented in docs/security.md).
-- 2. client.upsert_coda_rows matches doc + table: Coda table ids are unique only within a doc, so two tenants can
--    bind the same table id in different docs. The 3-argument form takes the doc id; the 2-argument form stays
--    for existing callers but refuses a table id bound in more than one doc.
-- 3. core.*: the application role may no longer delete tenants (a cascade through every tenant's data) nor
--    rewrite their id/slug; tenant settings are visible only to a session bound to that tenant (RLS).
SET LOCAL ROLE kaizenity_owner;

CREATE FUNCTION client.bind_tenant(p_tenant uuid) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    binding regclass := to_regclass('pg_temp.kaizenity_tenant_binding');
    bound uuid;
BEGIN
    IF p_tenant IS NULL OR NOT EXISTS (SELECT 1 FROM core.tenants WHERE id = p_tenant AND status = 'active') THEN
        RAISE EXCEPTION 'client.bind_tenant: % is not an active tenant', p_tenant
            USING HINT = 'Pass the id of a row of core.tenants with status active.';
    END IF;
    IF binding IS NOT NULL AND (SELECT relowner FROM pg_class WHERE oid = binding) <> 'kaizenity_owner'::regrole THEN
        RAISE EXCEPTION 'client.bind_tenant: pg_temp.kaizenity_tenant_binding was not created by bind_tenant'
            USING HINT = 'Drop your own temporary table of that name; only bind_tenant may create it.';
    END IF;
    IF binding IS NULL THEN
        CREATE TEMPORARY TABLE kaizenity_tenant_binding (tenant_id uuid NOT NULL) ON COMMIT DELETE ROWS;
    END IF;
    EXECUTE 'SELECT tenant_id FROM pg_temp.kaizenity_tenant_binding LIMIT 1' INTO bound;
    IF bound IS NOT NULL AND bound <> p_tenant THEN
        RAISE EXCEPTION 'client.bind_tenant: this transaction is already bound to tenant %', bound
            USING HINT = 'Bind one tenant per transaction: commit, then bind the next tenant.';
    END IF;
    IF bound IS NULL THEN
        EXECUTE 'INSERT INTO pg_temp.kaizenity_tenant_binding (tenant_id) VALUES ($1)' USING p_tenant;
    END IF;
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    RETURN p_tenant;
END
$$;
REVOKE ALL ON FUNCTION client.bind_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client.bind_tenant(uuid) TO kaizenity_app;

-- Same signature, now the binding first. SECURITY DEFINER so it can read the owner's binding table; it reads
-- nothing else.
CREATE OR REPLACE FUNCTION client.current_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    binding regclass := to_regclass('pg_temp.kaizenity_tenant_binding');
    bound uuid;
BEGIN
    IF binding IS NOT NULL AND (SELECT relowner FROM pg_class WHERE oid = binding) = 'kaizenity_owner'::regrole THEN
        EXECUTE 'SELECT tenant_id FROM pg_temp.kaizenity_tenant_binding LIMIT 1' INTO bound;
        IF bound IS NOT NULL THEN
            RETURN bound;
        END IF;
    END IF;
    RETURN nullif(current_setting('app.tenant_id', true), '')::uuid;
END
$$;

-- Coda: doc + table.
RESET ROLE;
GRANT SELECT ON client.spaces TO kaizenity_sync;
SET LOCAL ROLE kaizenity_owner;

CREATE FUNCTION client.upsert_coda_rows(p_doc_id text, p_table_id text, p_page jsonb) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH rows AS (
        SELECT item FROM jsonb_array_elements(coalesce(p_page -> 'items', '[]'::jsonb)) AS item
        WHERE item ? 'id'
    ), changed AS (
        INSERT INTO client.entities (tenant_id, entity_type_id, attributes, coda_row_id, synced_at, updated_at)
        SELECT t.tenant_id, t.id, coalesce(rows.item -> 'values', '{}'::jsonb), rows.item ->> 'id', now(), now()
        FROM rows
        CROSS JOIN client.entity_types AS t
        JOIN client.spaces AS s ON s.id = t.space_id AND s.tenant_id = t.tenant_id
        WHERE t.coda_table_id = p_table_id AND s.coda_doc_id = p_doc_id
        ON CONFLICT (entity_type_id, coda_row_id) DO UPDATE
            SET attributes = EXCLUDED.attributes, synced_at = now(), updated_at = now()
            WHERE client.entities.attributes IS DISTINCT FROM EXCLUDED.attributes
        RETURNING 1
    )
    SELECT count(*)::integer FROM changed
$$;

RESET ROLE;
ALTER FUNCTION client.upsert_coda_rows(text, text, jsonb) OWNER TO kaizenity_sync;
REVOKE ALL ON FUNCTION client.upsert_coda_rows(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client.upsert_coda_rows(text, text, jsonb) TO kaizenity_app;
-- Replaced as the migration runner (the function belongs to kaizenity_sync, which keeps it).
CREATE OR REPLACE FUNCTION client.upsert_coda_rows(p_table_id text, p_page jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    docs text[];
BEGIN
    SELECT array_agg(DISTINCT s.coda_doc_id) INTO docs
    FROM client.entity_types AS t JOIN client.spaces AS s ON s.id = t.space_id
    WHERE t.coda_table_id = p_table_id;
    IF coalesce(array_length(docs, 1), 0) = 0 THEN
        RETURN 0;
    END IF;
    IF array_length(docs, 1) > 1 THEN
        RAISE EXCEPTION 'client.upsert_coda_rows: table % is bound in % Coda docs', p_table_id, array_length(docs, 1)
            USING HINT = 'Call client.upsert_coda_rows(doc_id, table_id, page): table ids are unique per doc only.';
    END IF;
    RETURN client.upsert_coda_rows(docs[1], p_table_id, p_page);
END
$$;


-- core.*: privileges and RLS.
REVOKE DELETE, UPDATE ON core.tenants FROM kaizenity_app;
GRANT UPDATE (name, status) ON core.tenants TO kaizenity_app;

ALTER TABLE core.settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.settings FORCE ROW LEVEL SECURITY;
-- Platform settings (tenant_id NULL) are readable by every session and written by the owner only.
CREATE POLICY tenant_isolation ON core.settings
    USING (tenant_id IS NULL OR tenant_id = client.current_tenant())
    WITH CHECK (tenant_id = client.current_tenant());
CREATE POLICY owner_all ON core.settings TO kaizenity_owner USING (true) WITH CHECK (true);
