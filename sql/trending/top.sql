CREATE OR REPLACE FUNCTION tally.top_size()
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- Rows kept per period and type in tally.trending_top. trending() returns at most 1000 (its lim),
    -- so 2000 leaves room for 1000 unlisted targets among the best before it has to sort the scores.
    SELECT 2000
$$;

COMMENT ON FUNCTION tally.top_size() IS 'How many of the best scores per period and type tally.trending_top keeps.';

CREATE OR REPLACE FUNCTION tally.rebuild_top()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
/*
 * Refills tally.trending_top from tally.trending_scores: the best top_size() rows per period and type.
 * After the daily step (subtractions can reorder anything) and after a rebuild of the scores: one
 * bounded top-N sort per registered type and period (the scores have no rank index, on purpose).
 * Scores of types no longer registered are left out: trending() refuses those types.
 * SECURITY DEFINER: writes tables only the owner may touch.
 */
BEGIN
    DELETE FROM tally.trending_top;
    -- Per registered type and period, a bounded top-N sort of its scores (no full sort, no window).
    INSERT INTO tally.trending_top (period, target_type, target_id, rank, score, viewers)
    SELECT w.period, b.target_type, b.target_id, b.rank, b.score, b.viewers
    FROM (VALUES (7::smallint), (30::smallint)) AS w (period)
    CROSS JOIN tally.target_types AS t
    CROSS JOIN LATERAL (
        SELECT
            s.target_type,
            s.target_id,
            CASE w.period WHEN 7 THEN s.rank_7d ELSE s.rank_30d END AS rank,
            CASE w.period WHEN 7 THEN s.score_7d ELSE s.score_30d END AS score,
            CASE w.period WHEN 7 THEN s.viewers_7d ELSE s.viewers_30d END AS viewers
        FROM tally.trending_scores AS s
        WHERE s.target_type = t.target_type AND CASE w.period WHEN 7 THEN s.events_7d > 0 ELSE true END
        ORDER BY 3 DESC, s.target_id
        LIMIT tally.top_size()
    ) AS b;
END
$$;

COMMENT ON FUNCTION tally.rebuild_top() IS 'Refills tally.trending_top with the best top_size() scores per period and type.';
