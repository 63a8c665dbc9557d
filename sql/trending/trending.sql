CREATE OR REPLACE FUNCTION tally.trending(
    target_type text,
    period text DEFAULT '7d',
    lim integer DEFAULT 20
)
RETURNS TABLE (
    slug text,
    target_id text,
    score double precision,
    views bigint,
    copies bigint,
    downloads bigint,
    uses bigint
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The top `lim` listed targets of a type by trending score, from the materialized views (an index
 * range scan; no events are read). The parameter is `period`, not `window`: WINDOW is a reserved word,
 * so `window => '7d'` would be a syntax error for every caller. lim is capped at 1000 so that a
 * public endpoint cannot be made to stream a whole view.
 */
#variable_conflict use_column
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tally.target_types AS t WHERE t.target_type = trending.target_type) THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = format('unknown target type %s', coalesce(quote_literal(left(trending.target_type, 64)), 'NULL'));
    END IF;
    IF lim IS NULL OR lim NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'lim must be between 1 and 1000';
    END IF;
    IF period = '7d' THEN
        RETURN QUERY
        SELECT m.slug, m.target_id, m.score, m.views, m.copies, m.downloads, m.uses
        FROM tally.trending_7d AS m
        WHERE m.target_type = trending.target_type
        ORDER BY m.score DESC, m.target_id
        LIMIT lim;
    ELSIF period = '30d' THEN
        RETURN QUERY
        SELECT m.slug, m.target_id, m.score, m.views, m.copies, m.downloads, m.uses
        FROM tally.trending_30d AS m
        WHERE m.target_type = trending.target_type
        ORDER BY m.score DESC, m.target_id
        LIMIT lim;
    ELSE
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'period must be ''7d'' or ''30d''';
    END IF;
END
$$;

COMMENT ON FUNCTION tally.trending(text, text, integer) IS
'Top lim (1-1000) listed targets of a type by trending score for period 7d or 30d, with their counters.';
