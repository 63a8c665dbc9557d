CREATE OR REPLACE FUNCTION tally.rollup()
RETURNS tally.rollup_runs
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compilation costs seconds here for a plan that runs once and is mostly I/O and hashing.
SET jit = off
-- Grouping a large batch in memory instead of spilling to disk; local to this function.
SET work_mem = '256MB'
AS $rollup$
/*
 * Adds the events not yet rolled up to tally.daily_counts and to the host tables' counters, then
 * notifies the cache tags of the entities whose counters moved. Returns its tally.rollup_runs row.
 *
 * Exactly once: an event belongs to the batch when the transaction that inserted it (txid) is below
 * the xmin of the current snapshot - every such transaction has ended, so its events are all
 * visible now or never will be - and at or above the previous batch's bound. A transaction that
 * took its identity values before a rollup and commits after it has a txid at or above that
 * rollup's bound, so the next rollup counts it. An id watermark cannot promise this.
 *
 * Atomic: the batch is one transaction; a rollup that dies applies nothing and the next one counts
 * everything. Concurrent rollups: the second finds the advisory lock taken and returns 'skipped'.
 * Errors (statement_timeout included) roll the batch back and are recorded as a 'failed' run.
 * SECURITY DEFINER so that tally_admin and pg_cron jobs need no rights on events or host tables.
 * Host counters are added by tally_host.add_counters(), one call per target type, which runs as
 * tally_host_access: a trigger on a host table never runs as tally_owner.
 */
DECLARE
    v_lock constant bigint := 7301887002;
    v_run tally.rollup_runs;
    v_started timestamptz := clock_timestamp();
    v_from bigint;
    v_below bigint;
    v_events bigint;
    v_tags text [];
BEGIN
    IF NOT pg_try_advisory_xact_lock(v_lock) THEN
        INSERT INTO tally.rollup_runs (started_at, finished_at, status)
        VALUES (v_started, clock_timestamp(), 'skipped')
        RETURNING * INTO v_run;
        RETURN v_run;
    END IF;

    BEGIN
        SELECT s.rolled_up_below INTO v_from FROM tally.rollup_state AS s FOR UPDATE;
        v_below := greatest(v_from, (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint);

        WITH batch AS MATERIALIZED (
            SELECT
                (e.created_at AT TIME ZONE 'UTC')::date AS day,
                e.target_type,
                e.target_id,
                e.kind,
                count(*) AS n
            FROM tally.events AS e
            WHERE e.txid >= v_from AND e.txid < v_below
            GROUP BY 1, 2, 3, 4
        ),
        daily AS (
            INSERT INTO tally.daily_counts AS d (day, target_type, target_id, kind, count)
            SELECT b.day, b.target_type, b.target_id, b.kind, b.n FROM batch AS b
            ON CONFLICT (day, target_type, target_id, kind) DO UPDATE SET count = d.count + excluded.count
        ),
        per_type AS (
            SELECT
                p.target_type,
                array_agg(p.target_id ORDER BY p.target_id) AS ids,
                array_agg(p.views ORDER BY p.target_id) AS views,
                array_agg(p.copies ORDER BY p.target_id) AS copies,
                array_agg(p.downloads ORDER BY p.target_id) AS downloads,
                array_agg(p.uses ORDER BY p.target_id) AS uses
            FROM (
                SELECT
                    b.target_type,
                    b.target_id,
                    coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'views'), 0)::bigint AS views,
                    coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'copies'), 0)::bigint AS copies,
                    coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'downloads'), 0)::bigint AS downloads,
                    coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'uses'), 0)::bigint AS uses
                FROM batch AS b
                INNER JOIN tally.kinds AS k ON k.kind = b.kind
                WHERE k.counter_column IS NOT NULL
                GROUP BY b.target_type, b.target_id
            ) AS p
            GROUP BY p.target_type
        ),
        updated AS (
            SELECT u.tag
            FROM per_type AS t
            CROSS JOIN LATERAL tally_host.add_counters(t.target_type, t.ids, t.views, t.copies, t.downloads, t.uses)
                AS u (tag)
        )
        SELECT
            (SELECT coalesce(sum(b.n), 0)::bigint FROM batch AS b),
            ARRAY(SELECT u.tag FROM updated AS u)
        INTO v_events, v_tags;

        UPDATE tally.rollup_state AS s SET rolled_up_below = v_below, last_run_at = now();
        PERFORM tally.summarize_new_events();
        PERFORM tally.notify_revalidate(v_tags);

        INSERT INTO tally.rollup_runs (started_at, finished_at, status, events, entities, from_txid, to_txid)
        VALUES (v_started, clock_timestamp(), 'ok', v_events, cardinality(v_tags), v_from, v_below)
        RETURNING * INTO v_run;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        INSERT INTO tally.rollup_runs (started_at, finished_at, status, from_txid, error)
        VALUES (v_started, clock_timestamp(), 'failed', v_from, format('%s: %s', SQLSTATE, SQLERRM))
        RETURNING * INTO v_run;
    END;
    RETURN v_run;
END
$rollup$;

COMMENT ON FUNCTION tally.rollup() IS
'Adds events not yet rolled up to daily_counts and host counters exactly once, notifies tally_revalidate, and returns '
'the run (status ok, skipped or failed).';
