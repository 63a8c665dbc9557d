CREATE OR REPLACE FUNCTION tally.round_score(score double precision)
RETURNS double precision
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- score rounded to 12 significant digits. Sums of the same terms added in another order can differ
    -- in their last bits; rounded, they are equal, so ties order the same as in a recompute. No SET
    -- clause so that it inlines (see clean_text); it names only pg_catalog objects, qualified.
    -- OPERATOR() forms all share one precedence, hence the parentheses; no FROM, so that it inlines.
    SELECT CASE
        WHEN score OPERATOR(pg_catalog.=) 0 OR score IS NULL THEN score
        ELSE pg_catalog.round(
            score OPERATOR(pg_catalog./)
            (10::pg_catalog.float8 OPERATOR(pg_catalog.^)
                (pg_catalog.floor(pg_catalog.log(pg_catalog.abs(score))) OPERATOR(pg_catalog.-) 11))
        ) OPERATOR(pg_catalog.*)
        (10::pg_catalog.float8 OPERATOR(pg_catalog.^)
            (pg_catalog.floor(pg_catalog.log(pg_catalog.abs(score))) OPERATOR(pg_catalog.-) 11))
    END
$$;

COMMENT ON FUNCTION tally.round_score(double precision) IS
'A trending score rounded to 12 significant digits, the rank that ties order by.';

CREATE OR REPLACE FUNCTION tally.trending_weights()
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The kind weights the scores depend on, as one comparable value.
    SELECT coalesce(string_agg(k.kind || '=' || k.weight::text, ',' ORDER BY k.kind), '')
    FROM tally.kinds AS k
$$;

COMMENT ON FUNCTION tally.trending_weights() IS
'The kind weights as text (kind=weight,...), stored with the scores to notice a change.';

CREATE OR REPLACE FUNCTION tally.growth(from_day date, to_day date, half_life interval)
RETURNS double precision
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- 2 ^ ((to_day - from_day) / half-life in days): the forward-decay weight of to_day measured from
    -- the landmark from_day, and (days swapped) the factor that turns forward-decayed scores back
    -- into backward-decayed ones. The one place the formula lives: the rollup adds and the daily step
    -- subtracts with it, so both must compute the very same doubles. No SET clause so that it inlines
    -- (see clean_text); it names only pg_catalog objects and operators.
    SELECT 2::pg_catalog.float8 OPERATOR(pg_catalog.^) (
        (to_day OPERATOR(pg_catalog.-) from_day)::pg_catalog.float8
        OPERATOR(pg_catalog./)
        (pg_catalog.date_part('epoch', half_life) OPERATOR(pg_catalog./) 86400)
    )
$$;

COMMENT ON FUNCTION tally.growth(date, date, interval) IS
'2 ^ ((to_day - from_day) / half_life in days): forward-decay weight of a day, or (swapped) the backward factor.';
