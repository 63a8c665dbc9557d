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
 * rollup lock so that no rollup runs in between. Returns how many rows it corrected; a result of 0
 * means the incremental counters were right.
 */
DECLARE
    v_lock constant bigint := 7301887002;
    v_type tally.target_types;
    v_fixed bigint := 0;
    v_rows bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(v_lock);
    FOR v_type IN SELECT * FROM tally.target_types AS t ORDER BY t.target_type LOOP
        EXECUTE format($q$
            UPDATE %1$s AS h SET
                views = s.views, copies = s.copies, downloads = s.downloads, uses = s.uses,
                counters_refreshed_at = now()
            FROM (
                SELECT
                    x.%2$I AS key,
                    coalesce(d.views, 0) AS views,
                    coalesce(d.copies, 0) AS copies,
                    coalesce(d.downloads, 0) AS downloads,
                    coalesce(d.uses, 0) AS uses
                FROM %1$s AS x
                LEFT JOIN (
                    SELECT
                        dc.target_id,
                        sum(dc.count) FILTER (WHERE k.counter_column = 'views') AS views,
                        sum(dc.count) FILTER (WHERE k.counter_column = 'copies') AS copies,
                        sum(dc.count) FILTER (WHERE k.counter_column = 'downloads') AS downloads,
                        sum(dc.count) FILTER (WHERE k.counter_column = 'uses') AS uses
                    FROM tally.daily_counts AS dc
                    INNER JOIN tally.kinds AS k ON k.kind = dc.kind
                    WHERE dc.target_type = %3$L
                    GROUP BY dc.target_id
                ) AS d ON d.target_id = x.%2$I::text
            ) AS s
            WHERE h.%2$I = s.key
                AND (h.views, h.copies, h.downloads, h.uses) IS DISTINCT FROM
                    (s.views, s.copies, s.downloads, s.uses)
        $q$, v_type.host_table, v_type.key_column, v_type.target_type);
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_fixed := v_fixed + v_rows;
    END LOOP;
    RETURN v_fixed;
END
$$;

COMMENT ON FUNCTION tally.rebuild_counters() IS
'Recomputes every host counter from tally.daily_counts under the rollup lock; returns the number of rows corrected.';
