CREATE OR REPLACE FUNCTION tally.rebuild_counters()
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compilation costs seconds here for a plan that runs once and is mostly I/O and hashing.
SET jit = off
SET work_mem = '256MB'
AS $$
/*
 * Repair path: sets every host row's views, copies, downloads and uses to the sum of its rows in
 * tally.daily_counts (events not yet rolled up are, as always, not in the counters). Waits for the
 * rollup lock so that no rollup runs in between, and for any host row another transaction holds
 * (unlike the rollup, which defers such a row); the shares deferred until now (tally.host_backlog)
 * are in the totals, so the backlog is emptied. Queues the cache tag of every row it changes
 * (tally.notify_revalidate). Returns how many rows it corrected; a result of 0 means the incremental
 * counters were right.
 */
DECLARE
    v_type tally.target_types;
    v_tags text [] := '{}';
BEGIN
    PERFORM tally.lock_rollup();
    DELETE FROM tally.host_backlog;
    -- Host rows are set by tally_host.set_counters(), as tally_host_access (see build_host_access).
    FOR v_type IN SELECT * FROM tally.target_types AS t ORDER BY t.target_type LOOP
        v_tags := v_tags || ARRAY(
            SELECT c.tag
            FROM (
                SELECT
                    coalesce(array_agg(d.target_id), '{}') AS ids,
                    coalesce(array_agg(d.views), '{}') AS views,
                    coalesce(array_agg(d.copies), '{}') AS copies,
                    coalesce(array_agg(d.downloads), '{}') AS downloads,
                    coalesce(array_agg(d.uses), '{}') AS uses
                FROM (
                    SELECT
                        dc.target_id,
                        coalesce(sum(dc.count) FILTER (WHERE k.counter_column = 'views'), 0)::bigint AS views,
                        coalesce(sum(dc.count) FILTER (WHERE k.counter_column = 'copies'), 0)::bigint AS copies,
                        coalesce(sum(dc.count) FILTER (WHERE k.counter_column = 'downloads'), 0)::bigint AS downloads,
                        coalesce(sum(dc.count) FILTER (WHERE k.counter_column = 'uses'), 0)::bigint AS uses
                    FROM tally.daily_counts AS dc
                    INNER JOIN tally.kinds AS k ON k.kind = dc.kind
                    WHERE dc.target_type = v_type.target_type
                    GROUP BY dc.target_id
                ) AS d
            ) AS t
            CROSS JOIN LATERAL tally_host.set_counters(
                v_type.target_type, t.ids, t.views, t.copies, t.downloads, t.uses
            ) AS c (tag)
        );
    END LOOP;
    -- Each row it changed shows other counts than its caches do: their tags are queued, as the rollup
    -- queues those of the rows it adds to.
    PERFORM tally.notify_revalidate(v_tags);
    RETURN cardinality(v_tags);
END
$$;

COMMENT ON FUNCTION tally.rebuild_counters() IS
'Recomputes every host counter from tally.daily_counts under the rollup lock; returns the number of rows corrected.';
