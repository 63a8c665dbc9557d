CREATE OR REPLACE FUNCTION tally.notify_revalidate(tags text[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Queues cache tags ('snippet:<slug>', ...) in tally.revalidation_outbox, in the caller's (the
 * rollup's) transaction, and sends one NOTIFY on channel tally_revalidate whose payload is the number
 * queued: a wake-up for consumers, naming no target (any role may LISTEN). Both take effect on commit,
 * so a tag is queued exactly when its counters moved. Returns the number of tags queued.
 */
DECLARE
    v_queued integer;
BEGIN
    INSERT INTO tally.revalidation_outbox (tag)
    SELECT t.tag FROM unnest(tags) AS t (tag) WHERE t.tag IS NOT NULL;
    GET DIAGNOSTICS v_queued = ROW_COUNT;
    IF v_queued > 0 THEN
        PERFORM pg_notify('tally_revalidate', v_queued::text);
    END IF;
    RETURN v_queued;
END
$$;

COMMENT ON FUNCTION tally.notify_revalidate(text[]) IS
'Queues cache tags in revalidation_outbox and wakes consumers with NOTIFY tally_revalidate (payload: the count).';
