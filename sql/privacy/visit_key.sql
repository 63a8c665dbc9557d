CREATE OR REPLACE FUNCTION tally.visit_key(target_type text, target_id text, kind text, visitor uuid)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
-- No SET clause, so that the rollup inlines it; only built-in operators and functions, schema-qualified.
AS $$
    -- One visitor's visit of one target and kind: a 64-bit hash, cheap enough to compute per event.
    -- Unambiguous text: the target type holds no '/', the visitor (36 characters, none a '/') follows
    -- the kind and a '/', and the target id (any text) comes last.
    SELECT pg_catalog.hashtextextended(
        target_type OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) kind OPERATOR(pg_catalog.||) '/'
        OPERATOR(pg_catalog.||) visitor::text OPERATOR(pg_catalog.||) target_id,
        0
    )
$$;

COMMENT ON FUNCTION tally.visit_key(text, text, text, uuid) IS
'64-bit key of a visitor''s visit of a target and kind (tally.daily_visitors).';
