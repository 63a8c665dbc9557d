CREATE OR REPLACE FUNCTION tally.ack_tags(ids bigint[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Acknowledges delivered cache tags (ids from tally.next_tags()): they leave the outbox when the
 * caller's transaction commits. Returns how many were removed.
 */
DECLARE
    v_removed integer;
BEGIN
    DELETE FROM tally.revalidation_outbox AS o WHERE o.id = ANY (ids);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN v_removed;
END
$$;

COMMENT ON FUNCTION tally.ack_tags(bigint[]) IS
'Removes delivered cache tags from the outbox (on commit). For tally_consumer.';
