CREATE OR REPLACE FUNCTION tally.notify_revalidate(tags text[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Sends cache tags ('snippet:<slug>', ...) on channel tally_revalidate as JSON arrays of strings.
 * PostgreSQL refuses payloads of 8000 bytes or more, so tags are packed greedily into payloads of at
 * most 7999 bytes (a JSON array adds 2 bytes, each tag its quoted form plus a comma). A single tag
 * too long to fit anywhere is skipped with a WARNING. Notifications are delivered on commit.
 * Returns the number of notifications sent.
 */
DECLARE
    v_limit constant integer := 7999;
    v_tag text;
    v_item text;
    v_payload text := '';
    v_sent integer := 0;
BEGIN
    FOREACH v_tag IN ARRAY coalesce(tags, '{}') LOOP
        v_item := to_json(v_tag)::text;
        IF octet_length(v_item) + 2 > v_limit THEN
            RAISE WARNING 'tally: cache tag of % bytes cannot be notified', octet_length(v_item);
            CONTINUE;
        END IF;
        IF v_payload <> '' AND octet_length(v_payload) + octet_length(v_item) + 3 > v_limit THEN
            PERFORM pg_notify('tally_revalidate', '[' || v_payload || ']');
            v_sent := v_sent + 1;
            v_payload := '';
        END IF;
        v_payload := CASE WHEN v_payload = '' THEN v_item ELSE v_payload || ',' || v_item END;
    END LOOP;
    IF v_payload <> '' THEN
        PERFORM pg_notify('tally_revalidate', '[' || v_payload || ']');
        v_sent := v_sent + 1;
    END IF;
    RETURN v_sent;
END
$$;

COMMENT ON FUNCTION tally.notify_revalidate(text[]) IS
'NOTIFY tally_revalidate with the given cache tags as JSON arrays, batched under the 8000-byte payload limit.';
