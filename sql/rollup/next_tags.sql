CREATE OR REPLACE FUNCTION tally.next_tags(lim integer DEFAULT 100)
RETURNS TABLE (id bigint, tag text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The oldest queued cache tags not being delivered by another consumer, locked (FOR UPDATE SKIP
 * LOCKED) until the caller's transaction ends. Call it in a transaction, deliver, then
 * tally.ack_tags() the ids and commit; a consumer that fails or dies rolls back and the tags are
 * delivered again (at least once; the same tag may appear more than once). lim is capped at 10,000.
 * SECURITY DEFINER so that tally_consumer needs no rights on the outbox table.
 */
#variable_conflict use_column
BEGIN
    IF lim IS NULL OR lim NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'lim must be between 1 and 10000';
    END IF;
    RETURN QUERY
    SELECT o.id, o.tag FROM tally.revalidation_outbox AS o
    ORDER BY o.id
    LIMIT lim
    FOR UPDATE SKIP LOCKED;
END
$$;

COMMENT ON FUNCTION tally.next_tags(integer) IS
'Takes up to lim queued cache tags for delivery (locked until commit; others skip them). For tally_consumer.';
