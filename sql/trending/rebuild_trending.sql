CREATE OR REPLACE FUNCTION tally.rebuild_trending()
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
 * Recomputes every trending score from tally.daily_counts: the 30 days ending today (UTC), with a
 * new landmark (epoch) at the start of that window, the current half-life and kind weights. The
 * rollup calls it when the half-life or a weight changed, when the days moved backwards, and to
 * re-base the landmark before 2^((today - epoch) / half_life) grows large (past 2^200: a double
 * overflows near 2^1024, and the rebuild is cheap next to that horizon). Waits for the rollup lock,
 * so it never interleaves with a batch. Readers are never blocked (row updates, not TRUNCATE).
 * Returns the number of score rows (targets). SECURITY DEFINER: tally_admin may call it.
 */
DECLARE
    v_today date := (tally.now() AT TIME ZONE 'UTC')::date;
    v_epoch date := v_today - 29;
    v_half_life interval;
    v_rows bigint;
BEGIN
    PERFORM tally.lock_rollup();
    SELECT s.trending_half_life INTO v_half_life FROM tally.settings AS s;

    DELETE FROM tally.trending_scores;
    INSERT INTO tally.trending_scores (
        target_type, target_id, score_7d, rank_7d, events_7d, viewers_7d,
        score_30d, rank_30d, events_30d, viewers_30d, last_day
    )
    SELECT
        d.target_type, d.target_id, d.score_7d, tally.round_score(d.score_7d), d.events_7d, d.viewers_7d,
        d.score_30d, tally.round_score(d.score_30d), d.events_30d, d.viewers_30d, d.last_day
    FROM (
        SELECT
            dc.target_type,
            dc.target_id,
            coalesce(sum(dc.count * k.weight::double precision * tally.growth(v_epoch, dc.day, v_half_life))
                FILTER (WHERE dc.day > v_today - 7), 0) AS score_7d,
            coalesce(sum(dc.count) FILTER (WHERE dc.day > v_today - 7), 0)::bigint AS events_7d,
            coalesce(sum(dc.viewers) FILTER (WHERE dc.day > v_today - 7 AND k.counter_column = 'views'), 0)::bigint
                AS viewers_7d,
            sum(dc.count * k.weight::double precision * tally.growth(v_epoch, dc.day, v_half_life)) AS score_30d,
            sum(dc.count)::bigint AS events_30d,
            coalesce(sum(dc.viewers) FILTER (WHERE k.counter_column = 'views'), 0)::bigint AS viewers_30d,
            max(dc.day) AS last_day
        FROM tally.daily_counts AS dc
        INNER JOIN tally.kinds AS k ON k.kind = dc.kind AND k.weight > 0
        WHERE dc.day > v_today - 30 AND dc.day <= v_today
        GROUP BY dc.target_type, dc.target_id
    ) AS d;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    PERFORM tally.rebuild_top();

    INSERT INTO tally.trending_state AS s (singleton, epoch, day, half_life, weights)
    VALUES (true, v_epoch, v_today, v_half_life, tally.trending_weights())
    ON CONFLICT (singleton) DO UPDATE SET
        epoch = excluded.epoch, day = excluded.day, half_life = excluded.half_life, weights = excluded.weights;
    RETURN v_rows;
END
$$;

COMMENT ON FUNCTION tally.rebuild_trending() IS
'Recomputes all trending scores from daily_counts (after a half-life or weight change, or to re-base); returns rows.';
