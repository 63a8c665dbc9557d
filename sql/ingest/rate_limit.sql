-- Earlier signatures, replaced by the one below (a definition file must upgrade what it replaced).
DROP FUNCTION IF EXISTS tally.over_rate_limit(text, text, integer, interval, timestamptz);
DROP FUNCTION IF EXISTS tally.rate_limited(text, timestamptz, inet, text);
DROP FUNCTION IF EXISTS tally.rate_limited(text, timestamptz, inet, integer, text, integer);

CREATE OR REPLACE FUNCTION tally.rate_limited(
    p_kind text, p_window timestamptz, p_ip_key text, p_ip_limit integer, p_user_id text, p_user_limit integer
)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Counts one call of this address bucket (log_event's ip_key) and of this user for p_kind in the
 * fixed window starting at p_window, and says whether either goes past its limit (NULL: no limit).
 * Both keys are counted in one statement, locking their rows in key order for every caller;
 * rejected calls are added to tally.rate_limit_rejections per key ('ip:ADDRESS', 'ip:PREFIX/64',
 * 'ip:unparsable' or 'user:ID'), which the admin view reads. Fixed
 * windows allow up to twice a limit across a window boundary: the price of one upsert per key per
 * call instead of a log of timestamps.
 */
DECLARE
    v_over text [];
BEGIN
    WITH keys AS (
        SELECT
            c.key,
            c.max_hits,
            tally.rate_limit_key(c.key, p_kind) AS hash
        FROM (
            VALUES ('ip:' || p_ip_key, p_ip_limit), ('user:' || p_user_id, p_user_limit)
        ) AS c (key, max_hits)
        WHERE c.key IS NOT NULL AND c.max_hits IS NOT NULL
    ),
    counted AS (
        -- Rows locked in key order, as log_events() locks its batch's: no lock cycle between them.
        INSERT INTO tally.rate_limit_state AS s (key, window_start, hits)
        SELECT keys.hash, p_window, 1 FROM keys ORDER BY keys.hash
        ON CONFLICT (key, window_start) DO UPDATE SET hits = s.hits + 1
        RETURNING s.key AS hash, s.hits
    )
    SELECT array_agg(keys.key) INTO v_over
    FROM keys INNER JOIN counted ON counted.hash = keys.hash
    WHERE counted.hits > keys.max_hits;
    IF v_over IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO tally.rate_limit_rejections AS r (window_start, key, kind, rejected)
    SELECT p_window, o.key, p_kind, 1 FROM unnest(v_over) AS o (key) ORDER BY o.key COLLATE "C"
    ON CONFLICT (window_start, key, kind) DO UPDATE SET rejected = r.rejected + 1;
    RETURN true;
END
$$;

COMMENT ON FUNCTION tally.rate_limited(text, timestamptz, text, integer, text, integer) IS
'Counts a call against the per-IP and per-user limits of its kind in one window; '
'true (and logged in rate_limit_rejections) when over either.';
