-- tally.now(): the clock of ingestion. now(), unless the owner enabled settings.clock_override, in which
-- case a session may set tally.clock to place events in the past (demos and tests; see README).
CREATE OR REPLACE FUNCTION tally.now()
RETURNS timestamptz
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN s.clock_override
            THEN coalesce(nullif(current_setting('tally.clock', true), '')::timestamptz, now())
        ELSE now()
    END
    FROM tally.settings AS s
$$;

COMMENT ON FUNCTION tally.now() IS
'Ingestion clock: now(), or the session setting tally.clock when settings.clock_override is on.';
