CREATE OR REPLACE FUNCTION tally.over_rate_limit(
    p_key text, p_kind text, p_limit integer, p_window interval, p_at timestamptz
)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Counts one call of p_key ('ip:ADDRESS' or 'user:ID') for p_kind in the fixed window holding p_at and
 * says whether it goes past p_limit. Rejected calls are added to tally.rate_limit_rejections, which the
 * admin view reads. Fixed windows allow up to twice the limit across a window boundary; that is the
 * price of one upsert per call instead of a log of timestamps.
 */
DECLARE
    v_window timestamptz := date_bin(p_window, p_at, timestamptz '2000-01-01 00:00:00+00');
    v_hits integer;
BEGIN
    IF p_key IS NULL OR p_limit IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO tally.rate_limit_state AS s (key, window_start, hits)
    VALUES (md5(row(p_key, p_kind)::text)::uuid, v_window, 1)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = s.hits + 1
    RETURNING s.hits INTO v_hits;
    IF v_hits <= p_limit THEN
        RETURN false;
    END IF;
    INSERT INTO tally.rate_limit_rejections AS r (window_start, key, kind, rejected)
    VALUES (v_window, p_key, p_kind, 1)
    ON CONFLICT (window_start, key, kind) DO UPDATE SET rejected = r.rejected + 1;
    RETURN true;
END
$$;

COMMENT ON FUNCTION tally.over_rate_limit(text, text, integer, interval, timestamptz) IS
'Counts a call against a fixed-window limit; true (and logged in rate_limit_rejections) when over it.';
