CREATE OR REPLACE FUNCTION tally.debounce_key(target_type text, target_id text, kind text, visitor uuid)
RETURNS uuid
LANGUAGE sql
-- STABLE as record_out is: declared IMMUTABLE, it would never be inlined.
STABLE
PARALLEL SAFE
-- No SET clause, so that the statements using it inline it; only built-in functions, schema-qualified.
AS $$
    SELECT pg_catalog.md5(row(target_type, target_id, kind, visitor)::text)::uuid
$$;

COMMENT ON FUNCTION tally.debounce_key(text, text, text, uuid) IS
'Key of a debounce slot (tally.debounce.key): one per target, kind and visitor key. Used by log_event, claim_visit, '
'claim_visits and forget_user, which must agree.';

CREATE OR REPLACE FUNCTION tally.rate_limit_key(key text, kind text)
RETURNS uuid
LANGUAGE sql
-- STABLE as record_out is: declared IMMUTABLE, it would never be inlined.
STABLE
PARALLEL SAFE
-- No SET clause, so that the queries using it inline it; only built-in functions, schema-qualified.
AS $$
    SELECT pg_catalog.md5(row(key, kind)::text)::uuid
$$;

COMMENT ON FUNCTION tally.rate_limit_key(text, text) IS
'Key of a rate-limit counter (tally.rate_limit_state.key) for ''ip:BUCKET'' or ''user:ID'' and a kind. Used by '
'log_event, parse_batch and forget_user, which must agree.';

CREATE OR REPLACE FUNCTION tally.debounce_horizon(at timestamptz)
RETURNS timestamptz
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Debounce slots claimed before this can no longer decide anything: they are older than the
    -- longest window and belong to a past UTC day (today's slots mark first visits until the day ends).
    SELECT least(
        at - (SELECT coalesce(max(k.debounce), interval '0') FROM tally.kinds AS k),
        date_trunc('day', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    )
$$;

COMMENT ON FUNCTION tally.debounce_horizon(timestamptz) IS
'Debounce slots last claimed before this instant are expired (housekeeping prunes them; forget_user looks no '
'further back).';
