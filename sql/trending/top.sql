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
 * After the daily step (subtractions can reorder anything) and after a rebuild of the scores. One
 * sort of the scores table, no index on it. SECURITY DEFINER: writes tables only the owner may touch.
 */
BEGIN
    DELETE FROM tally.trending_top;
    INSERT INTO tally.trending_top (period, target_type, target_id, rank)
    SELECT r.period, r.target_type, r.target_id, r.rank
    FROM (
        SELECT
            s.period,
            s.target_type,
            s.target_id,
            s.rank,
            row_number() OVER (PARTITION BY s.period, s.target_type ORDER BY s.rank DESC, s.target_id) AS n
        FROM tally.trending_scores AS s
    ) AS r
    WHERE r.n <= tally.top_size();
END
$$;

COMMENT ON FUNCTION tally.rebuild_top() IS 'Refills tally.trending_top with the best top_size() scores per period and type.';
