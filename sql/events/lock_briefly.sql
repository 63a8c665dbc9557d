CREATE OR REPLACE FUNCTION tally.lock_briefly(relations regclass[], modes text[])
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Takes locks that stop writers (partition upkeep: creating, attaching and dropping partitions of
 * tally.events), each relation alone (LOCK TABLE ONLY) in its mode, in the order given, waiting at
 * most 50 ms at a time (tally.execute_briefly): one transaction left open after a log_event call holds
 * ROW EXCLUSIVE on events to its end, and a queued lock request would stall every new call behind it.
 * Returns whether it holds them all (to the end of the transaction); false means the caller leaves its
 * step to its next run. Modes: those of LOCK TABLE, upper case. Runs as its caller.
 */
BEGIN
    IF EXISTS (
        SELECT FROM unnest(modes) AS m (mode)
        WHERE m.mode IS NULL OR m.mode NOT IN (
            'ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE',
            'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE'
        )
    ) OR cardinality(relations) IS DISTINCT FROM cardinality(modes) THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'one LOCK TABLE mode per relation';
    END IF;
    RETURN tally.execute_briefly(ARRAY(
        SELECT format('LOCK TABLE ONLY %s IN %s MODE', l.relation, l.mode)
        FROM unnest(relations, modes) WITH ORDINALITY AS l (relation, mode, ord)
        ORDER BY l.ord
    ));
END
$$;

COMMENT ON FUNCTION tally.lock_briefly(regclass[], text[]) IS
'Takes the given LOCK TABLE ONLY locks for partition upkeep, waiting at most 50 ms at a time (10 tries): '
'returns false rather than queue behind an open transaction, which would stall every writer behind it.';
