-- Failed n8n executions, recorded by the error workflow ("Kaizenity: error handler", attached to every seed
-- workflow by the seeder) and read by monitoring (postgres_exporter query kaizenity_workflow_errors, alert
-- WorkflowErrorsRecorded). Only what on-call needs to find the execution: workflow, node, message, execution id;
-- never input data or the stack trace, and messages pass through ops.redact_error_message first.
SET LOCAL ROLE kaizenity_owner;

CREATE TABLE ops.workflow_errors (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    workflow_id   text,
    workflow_name text NOT NULL,
    node_name     text,
    message       text NOT NULL,
    execution_id  text,
    mode          text
);
CREATE INDEX workflow_errors_recent ON ops.workflow_errors (occurred_at DESC);

-- Secrets reach error messages through URLs and echoed requests: Telegram's bot token sits in the API path
-- (/bot<id>:<secret>/...), others as key=value or "Bearer <token>". Masked here, cut to 500 characters.
CREATE FUNCTION ops.redact_error_message(p_message text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT left(
        regexp_replace(
            regexp_replace(
                regexp_replace(coalesce(p_message, ''), 'bot[0-9]+:[A-Za-z0-9_-]+', 'bot<redacted>', 'g'),
                '(bearer|basic)\s+[A-Za-z0-9._~+/=-]+', '\1 <redacted>', 'gi'),
            '((token|password|passwd|secret|api[_-]?key|authorization)["'']?\s*[=:]\s*["'']?)[^\s"''&,;]+', '\1<redacted>', 'gi'),
        500)
$$;

-- p_error: the Error Trigger's item ({"execution": {"id", "error": {"message"}, "lastNodeExecuted", "mode"},
-- "workflow": {"id", "name"}}, docs.n8n.io/integrations/builtin/core-nodes/n8n-nodes-base.errortrigger/).
CREATE FUNCTION ops.record_workflow_error(p_error jsonb) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ops.workflow_errors (workflow_id, workflow_name, node_name, message, execution_id, mode)
    VALUES (
        p_error #>> '{workflow,id}',
        coalesce(p_error #>> '{workflow,name}', '(unknown workflow)'),
        p_error #>> '{execution,lastNodeExecuted}',
        ops.redact_error_message(coalesce(p_error #>> '{execution,error,message}', '(no message)')),
        p_error #>> '{execution,id}',
        p_error #>> '{execution,mode}'
    )
    RETURNING id
$$;

GRANT EXECUTE ON FUNCTION ops.redact_error_message(text), ops.record_workflow_error(jsonb) TO kaizenity_app;
