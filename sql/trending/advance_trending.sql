CREATE OR REPLACE FUNCTION tally.advance_trending()
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
-- Grouping the leaving days (one row per target and kind each) in memory instead of spilling to disk.
SET work_mem = '256MB'
AS $$
/*
 * Brings the trending windows to today (UTC), idempotently: the daily step. For each period it
 * subtracts the days that left the window since trending_state.day (however many days were missed),
 * zeroes a window's part of the targets whose last active day left it and deletes those that left
 * both, so no float residue stays behind; one update per target for both windows. Then it
 * refills tally.trending_top (subtractions can reorder anything). Reads
 * only the daily rows of the leaving days (the primary key of daily_counts starts with day).
 * Rebuilds instead (tally.rebuild_trending()) when there are no scores yet, the half-life or a kind
 * weight changed, the days moved backwards, or the landmark is due for a re-base.
 * Returns what it did: 'current', 'stepped' or 'rebuilt'. The rollup calls it first, in its own
 * transaction; so do housekeeping and refresh_trending().
 */
DECLARE
    v_today date := (tally.now() AT TIME ZONE 'UTC')::date;
    v_state tally.trending_state;
    v_half_life interval;
BEGIN
    PERFORM tally.lock_rollup();
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

    -- Days in (state.day - period, today - period] have left the period's window. A target whose
    -- last day left a window has exactly nothing there (no float residue), and leaves the table with
    -- the 30-day window.
    UPDATE tally.trending_scores AS t SET
        score_7d = CASE WHEN t.last_day > v_today - 7 THEN t.score_7d - x.score_7d ELSE 0 END,
        rank_7d = CASE WHEN t.last_day > v_today - 7 THEN tally.round_score(t.score_7d - x.score_7d) ELSE 0 END,
        events_7d = t.events_7d - x.events_7d,
        viewers_7d = t.viewers_7d - x.viewers_7d,
        score_30d = t.score_30d - x.score_30d,
        rank_30d = tally.round_score(t.score_30d - x.score_30d),
        events_30d = t.events_30d - x.events_30d,
        viewers_30d = t.viewers_30d - x.viewers_30d
    FROM (
        SELECT
            dc.target_type,
            dc.target_id,
            coalesce(sum(dc.score) FILTER (WHERE dc.period = 7), 0) AS score_7d,
            coalesce(sum(dc.count) FILTER (WHERE dc.period = 7), 0)::bigint AS events_7d,
            coalesce(sum(dc.viewers) FILTER (WHERE dc.period = 7), 0)::bigint AS viewers_7d,
            coalesce(sum(dc.score) FILTER (WHERE dc.period = 30), 0) AS score_30d,
            coalesce(sum(dc.count) FILTER (WHERE dc.period = 30), 0)::bigint AS events_30d,
            coalesce(sum(dc.viewers) FILTER (WHERE dc.period = 30), 0)::bigint AS viewers_30d
        FROM (
            SELECT
                w.period,
                d.target_type,
                d.target_id,
                d.count,
                d.count * k.weight::double precision * tally.growth(v_state.epoch, d.day, v_state.half_life) AS score,
                CASE WHEN k.counter_column = 'views' THEN d.viewers ELSE 0 END AS viewers
            FROM (VALUES (7), (30)) AS w (period)
            INNER JOIN tally.daily_counts AS d ON d.day > v_state.day - w.period AND d.day <= v_today - w.period
            INNER JOIN tally.kinds AS k ON k.kind = d.kind AND k.weight > 0
        ) AS dc
        GROUP BY dc.target_type, dc.target_id
    ) AS x
    WHERE t.target_type = x.target_type AND t.target_id = x.target_id;

    DELETE FROM tally.trending_scores AS t WHERE t.last_day <= v_today - 30;
    PERFORM tally.rebuild_top();
    UPDATE tally.trending_state AS s SET day = v_today;
    RETURN 'stepped';
END
$$;

COMMENT ON FUNCTION tally.advance_trending() IS
'The daily step of the trending windows (idempotent; catches up missed days), or a rebuild when due.';
