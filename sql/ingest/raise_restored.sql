CREATE OR REPLACE FUNCTION tally.raise_restored()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Refuses to store an event that the rollup would never count. log_event, log_events and the
 * admit_event trigger call it only when the writing transaction's id counts as rolled up already in
 * tally.rollup_state's snapshot, which cannot happen in the cluster that took the snapshot: the
 * database was restored from a dump of a cluster whose transaction ids this one has not reached.
 * An error, not an outcome: the caller learns that nothing was stored (an acknowledged event is never
 * lost), until an operator has run tally.after_restore(). Hot paths pay for the test, not this call.
 */
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '55000',
        MESSAGE = 'events cannot be logged until tally.after_restore() has run',
        DETAIL = 'This database was restored from a dump of a cluster whose transaction ids this one has not '
            || 'reached: an event logged now would never be counted.',
        HINT = 'an operator runs SELECT tally.after_restore(); see the README, "Moving a database to another cluster"';
END
$$;

COMMENT ON FUNCTION tally.raise_restored() IS
'Raises 55000: a database restored into a cluster whose transaction ids are behind its own logs nothing until '
'tally.after_restore() has run.';
