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
 */
DECLARE
    v_lock constant bigint := 7301887002;
    v_run tally.rollup_runs;
    v_started timestamptz := clock_timestamp();
    v_from bigint;
    v_below bigint;
    v_type tally.target_types;
    v_key_type text;
    v_updates text := '';
    v_tag_sources text[] := '{}';
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

        FOR v_type IN SELECT * FROM tally.target_types AS t ORDER BY t.target_type LOOP
            v_key_type := tally.key_type(v_type.host_table, v_type.key_column);
            v_updates := v_updates || format($u$,
    %1$I AS (
        UPDATE %2$s AS h SET
            views = h.views + p.views,
            copies = h.copies + p.copies,
            downloads = h.downloads + p.downloads,
            uses = h.uses + p.uses,
            counters_refreshed_at = now()
        FROM per_target AS p
        WHERE p.target_type = %3$L AND h.%4$I = p.target_id::%5$s
        RETURNING %3$L || ':' || h.%6$I AS tag
    )$u$, 'updated_' || v_type.target_type, v_type.host_table, v_type.target_type, v_type.key_column,
                v_key_type, v_type.slug_column);
            v_tag_sources := v_tag_sources || format('SELECT u.tag FROM %I AS u', 'updated_' || v_type.target_type);
        END LOOP;

        EXECUTE format($q$
    WITH batch AS MATERIALIZED (
        SELECT
            (e.created_at AT TIME ZONE 'UTC')::date AS day,
            e.target_type,
            e.target_id,
            e.kind,
            count(*) AS n
        FROM tally.events AS e
        WHERE e.txid >= $1 AND e.txid < $2
        GROUP BY 1, 2, 3, 4
    ),
    daily AS (
        INSERT INTO tally.daily_counts AS d (day, target_type, target_id, kind, count)
        SELECT b.day, b.target_type, b.target_id, b.kind, b.n FROM batch AS b
        ON CONFLICT (day, target_type, target_id, kind) DO UPDATE SET count = d.count + excluded.count
    ),
    per_target AS MATERIALIZED (
        SELECT
            b.target_type,
            b.target_id,
            coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'views'), 0) AS views,
            coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'copies'), 0) AS copies,
            coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'downloads'), 0) AS downloads,
            coalesce(sum(b.n) FILTER (WHERE k.counter_column = 'uses'), 0) AS uses
        FROM batch AS b
        INNER JOIN tally.kinds AS k ON k.kind = b.kind
        WHERE k.counter_column IS NOT NULL
        GROUP BY b.target_type, b.target_id
    )%s
    SELECT
        (SELECT coalesce(sum(b.n), 0)::bigint FROM batch AS b),
        ARRAY(%s)
$q$, v_updates, coalesce(nullif(array_to_string(v_tag_sources, ' UNION ALL '), ''), 'SELECT NULL::text WHERE false'))
        INTO v_events, v_tags
        USING v_from, v_below;

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
