CREATE OR REPLACE FUNCTION tally.refuse_restored(xid bigint)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Raises 55000 when transaction xid counts as rolled up already in tally.rollup_state's snapshot: an
 * event it stored would never be counted. That cannot happen in the cluster that took the snapshot
 * (its transactions are newer than it, or in progress in it); it happens in a database restored from
 * a dump of a cluster whose transaction ids this one has not reached, until an operator has run
 * tally.after_restore(). An error, not an outcome: the caller learns that nothing was stored.
 *
 * log_event and log_events call it only for a transaction below settings.rolled_up_xmax (older than
 * the last rollup's snapshot, or in such a database), so that their hot path pays for one comparison;
 * the admit_event trigger, for every row it validates.
 */
BEGIN
    IF tally.counted(refuse_restored.xid, (SELECT r.snapshot FROM tally.rollup_state AS r)) THEN
        RAISE EXCEPTION USING
            ERRCODE = '55000',
            MESSAGE = 'events cannot be logged until tally.after_restore() has run',
            DETAIL = 'This database was restored from a dump of a cluster whose transaction ids this one has not '
                || 'reached: an event logged now would never be counted.',
            HINT = 'an operator runs SELECT tally.after_restore(); see the README, "Moving a database to another '
                || 'cluster"';
    END IF;
END
$$;

COMMENT ON FUNCTION tally.refuse_restored(bigint) IS
'Raises 55000 when transaction xid counts as rolled up already: in a database restored into a cluster whose '
'transaction ids are behind its own, until tally.after_restore() has run.';
