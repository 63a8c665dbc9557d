CREATE OR REPLACE FUNCTION tally.rate_limited(
    p_kind text, p_at timestamptz, p_ip inet, p_user_id text
)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Counts one call of this IP and of this user for p_kind in the fixed window holding p_at, and says
 * whether either goes past its limit (tally.kinds.ip_limit, user_limit; NULL: no limit). Both keys
 * are counted in one statement, locking their rows in the same order for every caller; rejected calls
 * are added to tally.rate_limit_rejections per key ('ip:ADDRESS' or 'user:ID'), which the admin view
 * reads. Fixed windows allow up to twice a limit across a window boundary: the price of one upsert per
 * key per call instead of a log of timestamps.
 */
DECLARE
    v_window timestamptz;
    v_over text [];
BEGIN
    SELECT date_bin(k.rate_window, p_at, timestamptz '2000-01-01 00:00:00+00') INTO v_window
    FROM tally.kinds AS k WHERE k.kind = p_kind;
    WITH keys AS (
        SELECT
            c.key,
            c.max_hits,
            md5(row(c.key, p_kind)::text)::uuid AS hash
        FROM tally.kinds AS k
        CROSS JOIN LATERAL (
            VALUES (1, 'ip:' || host(p_ip), k.ip_limit), (2, 'user:' || p_user_id, k.user_limit)
        ) AS c (ord, key, max_hits)
        WHERE k.kind = p_kind AND c.key IS NOT NULL AND c.max_hits IS NOT NULL
        ORDER BY c.ord
    ),
    counted AS (
        INSERT INTO tally.rate_limit_state AS s (key, window_start, hits)
        SELECT keys.hash, v_window, 1 FROM keys
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
    SELECT v_window, o.key, p_kind, 1 FROM unnest(v_over) AS o (key)
    ON CONFLICT (window_start, key, kind) DO UPDATE SET rejected = r.rejected + 1;
    RETURN true;
END
$$;

COMMENT ON FUNCTION tally.rate_limited(text, timestamptz, inet, text) IS
'Counts a call against the per-IP and per-user limits of its kind; true (and logged in rate_limit_rejections) when over either.';
