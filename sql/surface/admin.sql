CREATE OR REPLACE VIEW tally.rate_limit_log AS
SELECT
    r.window_start,
    r.key,
    r.kind,
    r.rejected
FROM tally.rate_limit_rejections AS r;

COMMENT ON VIEW tally.rate_limit_log IS
'Calls rejected as rate_limited per window, key (ip:ADDRESS or user:ID) and kind. For tally_admin.';
COMMENT ON COLUMN tally.rate_limit_log.key IS 'Personal data inside the abuse window: see tally.rate_limit_rejections.key.';
COMMENT ON COLUMN tally.rate_limit_log.window_start IS 'Start of the fixed rate-limit window.';
COMMENT ON COLUMN tally.rate_limit_log.kind IS 'Event kind whose limit was reached.';
COMMENT ON COLUMN tally.rate_limit_log.rejected IS 'Calls that returned rate_limited.';

CREATE OR REPLACE VIEW tally.discard_log AS
SELECT
    d.day,
    d.target_type,
    d.kind,
    d.reason,
    sum(d.count)::bigint AS count
FROM tally.discards AS d
GROUP BY d.day, d.target_type, d.kind, d.reason;

COMMENT ON VIEW tally.discard_log IS
'Calls that logged nothing, per UTC day, target type, kind and outcome. For tally_admin.';
COMMENT ON COLUMN tally.discard_log.day IS 'UTC day of the calls.';
COMMENT ON COLUMN tally.discard_log.target_type IS 'Target type the calls named.';
COMMENT ON COLUMN tally.discard_log.kind IS 'Event kind the calls named.';
COMMENT ON COLUMN tally.discard_log.reason IS 'The outcome: any tally.outcome but logged.';
COMMENT ON COLUMN tally.discard_log.count IS 'Calls with this outcome.';

CREATE OR REPLACE FUNCTION tally.high_volume_ips(since interval DEFAULT '1 day', min_events integer DEFAULT 100)
RETURNS TABLE (
    ip inet,
    events bigint,
    rejected bigint,
    targets bigint,
    first_at timestamptz,
    last_at timestamptz
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Addresses with at least min_events logged events plus rate-limited calls in the last `since`.
    -- SECURITY DEFINER: tally_admin sees these aggregates but cannot read raw events.
    WITH logged AS (
        SELECT
            e.ip,
            count(*) AS events,
            count(DISTINCT (e.target_type, e.target_id)) AS targets,
            min(e.created_at) AS first_at,
            max(e.created_at) AS last_at
        FROM tally.events AS e
        WHERE e.created_at >= tally.now() - since AND e.ip IS NOT NULL
        GROUP BY e.ip
    ),
    limited AS (
        SELECT
            substr(r.key, 4)::inet AS ip,
            sum(r.rejected)::bigint AS rejected
        FROM tally.rate_limit_rejections AS r
        -- Address keys only: not 'ip:unparsable', the bucket of values that were not addresses.
        WHERE r.key LIKE 'ip:%' AND r.key <> 'ip:unparsable' AND r.window_start >= tally.now() - since
        GROUP BY 1
    )
    SELECT
        coalesce(l.ip, x.ip) AS ip,
        coalesce(l.events, 0) AS events,
        coalesce(x.rejected, 0) AS rejected,
        coalesce(l.targets, 0) AS targets,
        l.first_at,
        l.last_at
    FROM logged AS l
    FULL JOIN limited AS x ON x.ip = l.ip
    WHERE coalesce(l.events, 0) + coalesce(x.rejected, 0) >= min_events
    ORDER BY coalesce(l.events, 0) + coalesce(x.rejected, 0) DESC, 1
$$;

COMMENT ON FUNCTION tally.high_volume_ips(interval, integer) IS
'IP addresses (personal data; events keep them for settings.pii_retention) with at least min_events logged or '
'rate-limited calls within since, busiest first. For tally_admin.';
