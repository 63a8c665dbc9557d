-- The earlier name, which did not return each counter's limit.
DROP FUNCTION IF EXISTS tally.limit_hits(tally.ingest_item[], tally.ingest_state[]);

CREATE OR REPLACE FUNCTION tally.limit_counters(items tally.ingest_item[], state tally.ingest_state[])
RETURNS TABLE (key uuid, window_start timestamptz, hits integer, max_hits integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 2 of log_events: the rate-limit counters (tally.rate_limit_state rows) the batch's elements
 * may count against, how many of them reach the limits by the current state, and each counter's
 * limit (max_hits: its kind's ip_limit or user_limit; a counter's key names both). Every
 * candidate's keys are listed, with 0 hits if none reaches yet, so that they are locked before any
 * round.
 */
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT k.hash, r.rate_window, (count(*) FILTER (WHERE r.reach))::integer, min(k.max_hits)
    FROM ROWS FROM (unnest(limit_counters.items), unnest(limit_counters.state)) AS r
    CROSS JOIN LATERAL (VALUES (r.ip_hash, r.ip_limit), (r.user_hash, r.user_limit)) AS k (hash, max_hits)
    WHERE r.error IS NULL AND NOT r.seen AND NOT r.bot AND k.hash IS NOT NULL
    GROUP BY k.hash, r.rate_window;
END
$$;

COMMENT ON FUNCTION tally.limit_counters(tally.ingest_item[], tally.ingest_state[]) IS
'Step 2 of log_events: per rate-limit counter of the batch, the hits of the elements that reach it so far, and its '
'limit.';
