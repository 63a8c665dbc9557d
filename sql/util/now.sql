-- tally.now(): the clock of ingestion. now(), unless the owner enabled settings.clock_override, in which
-- case a session may set tally.clock to place events in the past (demos and tests; see README).
-- PL/pgSQL rather than SQL: a SQL function with a SET clause cannot be inlined and would be planned
-- again on every call, while PL/pgSQL keeps its plan.
CREATE OR REPLACE FUNCTION tally.now()
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_override boolean;
BEGIN
    SELECT s.clock_override INTO v_override FROM tally.settings AS s;
    IF v_override THEN
        RETURN coalesce(nullif(current_setting('tally.clock', true), '')::timestamptz, now());
    END IF;
    RETURN now();
END
$$;

COMMENT ON FUNCTION tally.now() IS
'Ingestion clock: now(), or the session setting tally.clock when settings.clock_override is on.';
