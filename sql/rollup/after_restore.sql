CREATE OR REPLACE FUNCTION tally.after_restore()
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Run once after restoring this database from a dump of another cluster (pg_dump, pg_restore).
 * The rollup batches events by the id of the transaction that inserted them (tally.rollup), and a
 * dump keeps the ids of the cluster it came from. Restored into a cluster whose ids have not reached
 * that cluster's last rollup, an event logged here would look rolled up already and never be counted,
 * and a restored event would be counted a second time once this cluster's ids passed its own. So
 * until this has run, log_event, log_events and inserts into tally.events raise 55000
 * (tally.refuse_restored) and tally.rollup() fails with 55000; all three only while the ids are behind.
 *
 * It moves the restored events into this cluster's ids: each one the other cluster had rolled up to
 * txid 0 (below anything a rollup here reads), unless its txid is below this cluster's oldest running
 * transaction already; each one it had not rolled up to this transaction's id, so that the first
 * rollup after this commits counts it, once. Then it stores this cluster's snapshot as the rollup's.
 * Returns the number of events moved, or 0, changing nothing, when the rollup state is not ahead of
 * this cluster (a dump restored into a cluster that was ahead, or a pg_upgrade, needs nothing).
 *
 * Takes the rollup's lock and blocks inserts into tally.events until it commits. It rewrites the
 * rows it moves (one UPDATE): VACUUM tally.events afterwards. SECURITY DEFINER so that tally_admin
 * needs no rights on events.
 */
DECLARE
    v_state tally.rollup_state;
    v_self xid8;
    v_snapshot pg_snapshot;
    v_below bigint;
    v_moved bigint;
    v_pass integer;
BEGIN
    v_self := pg_current_xact_id();
    FOR v_pass IN 1..2 LOOP
        -- Ahead: this cluster's next transaction ids would count as rolled up (see refuse_restored), or
        -- the stored snapshot has seen ids this cluster has not reached (see rollup). First without a
        -- lock, so that a database with nothing to do is not blocked; then again under the locks (a
        -- concurrent call may have done the work meanwhile).
        SELECT * INTO v_state FROM tally.rollup_state AS s;
        v_snapshot := tally.mark_running(pg_current_snapshot(), v_self);
        IF pg_snapshot_xmax(v_state.snapshot) <= pg_snapshot_xmax(v_snapshot)
            AND NOT tally.counted(v_self::text::bigint, v_state.snapshot) THEN
            RETURN 0;
        END IF;
        EXIT WHEN v_pass = 2;
        PERFORM tally.lock_rollup();
        LOCK TABLE tally.events IN EXCLUSIVE MODE;
    END LOOP;
    v_below := pg_snapshot_xmin(v_snapshot)::text::bigint;

    UPDATE tally.events AS e
    SET txid = CASE WHEN tally.counted(e.txid, v_state.snapshot) THEN 0 ELSE v_self::text::bigint END
    WHERE e.txid >= v_below OR NOT tally.counted(e.txid, v_state.snapshot);
    GET DIAGNOSTICS v_moved = ROW_COUNT;

    UPDATE tally.rollup_state AS s SET snapshot = v_snapshot, rolled_up_below = v_below;
    UPDATE tally.settings AS s SET rolled_up_xmax = pg_snapshot_xmax(v_snapshot)::text::bigint;
    RETURN v_moved;
END
$$;

COMMENT ON FUNCTION tally.after_restore() IS
'Run once after restoring the database from another cluster: moves the restored events into this cluster''s '
'transaction ids, so that each is counted exactly once; returns how many it moved (0: nothing to do).';
