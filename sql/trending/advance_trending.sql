CREATE OR REPLACE FUNCTION tally.advance_trending()
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
/*
 * Brings the trending windows to today (UTC), idempotently: the daily step. For each period it
 * subtracts the days that left the window since trending_state.day (however many days were missed)
 * and deletes the targets whose last active day left it, so no float residue stays behind, then
 * refills tally.trending_top (subtractions can reorder anything). Reads
 * only the daily rows of the leaving days (the primary key of daily_counts starts with day).
 * Rebuilds instead (tally.rebuild_trending()) when there are no scores yet, the half-life or a kind
 * weight changed, the days moved backwards, or the landmark is due for a re-base.
 * Returns what it did: 'current', 'stepped' or 'rebuilt'. The rollup calls it first, in its own
 * transaction; so do housekeeping and refresh_trending().
 */
DECLARE
    v_lock constant bigint := 7301887002;
    v_today date := (tally.now() AT TIME ZONE 'UTC')::date;
    v_state tally.trending_state;
    v_half_life interval;
BEGIN
    PERFORM pg_advisory_xact_lock(v_lock);
    SELECT * INTO v_state FROM tally.trending_state AS s FOR UPDATE;
    SELECT s.trending_half_life INTO v_half_life FROM tally.settings AS s;
    IF v_state IS NULL OR v_state.half_life <> v_half_life OR v_state.weights <> tally.trending_weights()
        OR v_today < v_state.day OR tally.growth(v_state.epoch, v_today, v_half_life) > 2::double precision ^ 200 THEN
        PERFORM tally.rebuild_trending();
        RETURN 'rebuilt';
    END IF;
    IF v_today = v_state.day THEN
        RETURN 'current';
    END IF;

    -- Days in (state.day - period, today - period] have left the period's window.
    UPDATE tally.trending_scores AS t SET
        score = t.score - x.score,
        rank = tally.round_score(t.score - x.score),
        events = t.events - x.events,
        viewers = t.viewers - x.viewers
    FROM (
        SELECT
            w.period,
            dc.target_type,
            dc.target_id,
            sum(dc.count * k.weight::double precision * tally.growth(v_state.epoch, dc.day, v_state.half_life)) AS score,
            sum(dc.count)::bigint AS events,
            coalesce(sum(dc.viewers) FILTER (WHERE k.counter_column = 'views'), 0)::bigint AS viewers
        FROM (VALUES (7::smallint), (30::smallint)) AS w (period)
        CROSS JOIN LATERAL (
            SELECT d.* FROM tally.daily_counts AS d
            WHERE d.day > v_state.day - w.period AND d.day <= v_today - w.period
        ) AS dc
        INNER JOIN tally.kinds AS k ON k.kind = dc.kind AND k.weight > 0
        GROUP BY w.period, dc.target_type, dc.target_id
    ) AS x
    WHERE t.period = x.period AND t.target_type = x.target_type AND t.target_id = x.target_id;

    DELETE FROM tally.trending_scores AS t WHERE t.last_day <= v_today - t.period;
    PERFORM tally.rebuild_top();
    UPDATE tally.trending_state AS s SET day = v_today;
    RETURN 'stepped';
END
$$;

COMMENT ON FUNCTION tally.advance_trending() IS
'The daily step of the trending windows (idempotent; catches up missed days), or a rebuild when due.';
