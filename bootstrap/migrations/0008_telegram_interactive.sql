-- Telegram as a two-way channel: every kind of update stored once and understood (commands, button presses,
-- the bot being blocked), notifications that carry buttons and record the user's choice, split sends tracked
-- part by part, and recipients that blocked the bot no longer sent to.
SET LOCAL ROLE kaizenity_owner;

-- kind: the update's field (message, callback_query, my_chat_member, ...); command: "/start" when the text
-- begins with a bot command (https://core.telegram.org/bots/features#commands).
ALTER TABLE ops.messages
    ADD COLUMN kind    text,
    ADD COLUMN command text;

-- choice: the callback_data choice of the button the recipient pressed (payload.buttons declares them);
-- parts_done: which parts of a body longer than one Telegram message (4096 characters) are already delivered,
-- so a retry sends only the missing ones.
ALTER TABLE ops.notifications
    ADD COLUMN choice     text,
    ADD COLUMN chosen_at  timestamptz,
    ADD COLUMN parts_done integer[] NOT NULL DEFAULT '{}';

-- A recipient that blocked the bot (my_chat_member "kicked", or 403 "bot was blocked by the user") is
-- unreachable until it unblocks (my_chat_member "member"): dispatch dead-letters its notifications at once.
CREATE TABLE ops.messenger_recipients (
    channel    text NOT NULL CHECK (channel IN ('telegram', 'slack', 'whatsapp', 'email')),
    recipient  text NOT NULL,
    reachable  boolean NOT NULL,
    reason     text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, recipient)
);

-- Store one Telegram update (https://core.telegram.org/bots/api#update) exactly once by update_id and apply
-- its effects in the same transaction, so the webhook can answer 2xx only after this commits (Telegram then
-- never redelivers it) and a redelivery changes nothing. Returns {stored, kind, callback_query_id}.
CREATE FUNCTION ops.store_telegram_update(u jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kind    text;
    v_body    jsonb;
    v_chat    text;
    v_text    text;
    v_status  text;
    v_id      bigint;
    v_choice  text[];
BEGIN
    IF jsonb_typeof(u) IS DISTINCT FROM 'object' OR NOT u ? 'update_id' THEN
        RETURN jsonb_build_object('stored', false, 'kind', NULL, 'reason', 'not a Telegram update (no update_id)');
    END IF;
    SELECT k INTO v_kind FROM jsonb_object_keys(u) AS k WHERE k <> 'update_id' ORDER BY k LIMIT 1;
    v_body := u -> v_kind;
    v_chat := coalesce(v_body -> 'chat' ->> 'id', v_body -> 'message' -> 'chat' ->> 'id', v_body -> 'from' ->> 'id');
    v_text := coalesce(v_body ->> 'text', v_body ->> 'caption', v_body ->> 'data');

    INSERT INTO ops.messages (channel, direction, idempotency_key, chat_id, body, payload, kind, command)
    VALUES ('telegram', 'inbound', u ->> 'update_id', v_chat, v_text, u, v_kind,
            CASE WHEN v_body ? 'text' THEN lower(substring(v_body ->> 'text' FROM '^(/[A-Za-z0-9_]{1,32})')) END)
    ON CONFLICT (channel, direction, idempotency_key) DO NOTHING
    RETURNING id INTO v_id;

    IF v_id IS NOT NULL AND v_kind = 'callback_query' THEN
        -- callback_data "n:<notification id>:<choice>" (set by dispatch); only the recipient may choose
        v_choice := regexp_match(v_body ->> 'data', '^n:([0-9]{1,18}):(.+)$');
        IF v_choice IS NOT NULL THEN
            UPDATE ops.notifications SET choice = v_choice[2], chosen_at = now()
            WHERE id = v_choice[1]::bigint AND channel = 'telegram' AND recipient = v_chat;
        END IF;
    ELSIF v_id IS NOT NULL AND v_kind = 'my_chat_member' THEN
        v_status := v_body -> 'new_chat_member' ->> 'status';
        IF v_status IN ('kicked', 'left', 'member', 'administrator', 'creator') THEN
            INSERT INTO ops.messenger_recipients AS r (channel, recipient, reachable, reason)
            VALUES ('telegram', v_chat, v_status NOT IN ('kicked', 'left'), 'my_chat_member: ' || v_status)
            ON CONFLICT (channel, recipient) DO UPDATE
                SET reachable = excluded.reachable, reason = excluded.reason, updated_at = now();
        END IF;
    END IF;
    RETURN jsonb_build_object('stored', v_id IS NOT NULL, 'kind', v_kind,
                              'callback_query_id', CASE WHEN v_kind = 'callback_query' THEN v_body ->> 'id' END);
END
$$;

REVOKE ALL ON FUNCTION ops.store_telegram_update(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.store_telegram_update(jsonb) TO kaizenity_app;

-- The parts a notification body is sent in: each at most p_max characters (Telegram's limit is 4096 code points
-- after entity parsing: td MessageContent.cpp utf8_length vs message_text_length_max), cut at the last line
-- break, else the last space, in the second half of a part; a part with neither is cut hard.
CREATE FUNCTION ops.telegram_parts(p_body text, p_max integer DEFAULT 4096) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_parts text[] := '{}';
    v_rest  text := p_body;
    v_chunk text;
    v_cut   integer;
BEGIN
    WHILE char_length(v_rest) > p_max LOOP
        v_chunk := left(v_rest, p_max + 1);  -- one more: a separator right after the limit is a clean cut
        v_cut := p_max + 2 - strpos(reverse(v_chunk), E'\n');
        IF strpos(v_chunk, E'\n') = 0 OR v_cut <= p_max / 2 THEN
            v_cut := p_max + 2 - strpos(reverse(v_chunk), ' ');
            IF strpos(v_chunk, ' ') = 0 OR v_cut <= p_max / 2 THEN
                v_parts := v_parts || left(v_rest, p_max);
                v_rest := substr(v_rest, p_max + 1);
                CONTINUE;
            END IF;
        END IF;
        v_parts := v_parts || left(v_rest, v_cut - 1);  -- the separator itself is dropped
        v_rest := substr(v_rest, v_cut + 1);
    END LOOP;
    RETURN v_parts || v_rest;
END
$$;

-- Text for parse_mode HTML that shows exactly p_text: Telegram's HTML parser (td MessageEntity.cpp parse_html)
-- treats only <, > and & specially (https://core.telegram.org/bots/api#html-style). n8n's Telegram node
-- forces a parse_mode (Markdown when none is set), so plain text must go through HTML with these escaped.
CREATE FUNCTION ops.telegram_html(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT replace(replace(replace(p_text, '&', '&amp;'), '<', '&lt;'), '>', '&gt;') $$;

-- The inline keyboard a notification declares in payload.buttons ([{"text", "choice"}, ...], one row of at most
-- 4), as Telegram buttons whose callback_data "n:<id>:<choice>" must fit 64 bytes
-- (https://core.telegram.org/bots/api#inlinekeyboardbutton). '[]' when none; NULL when the declaration is
-- invalid (dispatch dead-letters it with the reason instead of sending something else).
CREATE FUNCTION ops.telegram_buttons(p_id bigint, p_payload jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT coalesce(p_payload, '{}') ? 'buttons' THEN '[]'::jsonb
        WHEN jsonb_typeof(p_payload -> 'buttons') <> 'array' OR jsonb_array_length(p_payload -> 'buttons') > 4 THEN NULL
        WHEN EXISTS (
            SELECT 1 FROM jsonb_array_elements(p_payload -> 'buttons') AS b
            WHERE jsonb_typeof(b) <> 'object' OR coalesce(b ->> 'text', '') = '' OR coalesce(b ->> 'choice', '') = ''
               OR octet_length('n:' || p_id || ':' || (b ->> 'choice')) > 64
        ) THEN NULL
        ELSE (SELECT coalesce(jsonb_agg(jsonb_build_object('text', b ->> 'text',
                                                           'callback_data', 'n:' || p_id || ':' || (b ->> 'choice'))
                                        ORDER BY n), '[]'::jsonb)
              FROM jsonb_array_elements(p_payload -> 'buttons') WITH ORDINALITY AS e(b, n))
    END
$$;

GRANT EXECUTE ON FUNCTION ops.telegram_parts(text, integer), ops.telegram_html(text),
    ops.telegram_buttons(bigint, jsonb) TO kaizenity_app;
