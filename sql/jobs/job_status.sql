CREATE OR REPLACE VIEW tally.job_status AS
WITH pending AS (
    SELECT
        count(*) AS pending_events,
        min(e.created_at) AS oldest_pending
    FROM tally.events AS e
    INNER JOIN tally.rollup_state AS s ON e.txid >= s.rolled_up_below
)

SELECT
    j.jobname,
    j.schedule,
    j.active,
    j.last_start,
    j.last_end,
    j.last_status,
    j.last_message,
    r.started_at AS last_rollup_at,
    r.status AS last_rollup_status,
    r.error AS last_rollup_error,
    p.pending_events,
    now() - p.oldest_pending AS rollup_lag
FROM pending AS p
LEFT JOIN LATERAL (
    SELECT
        x.started_at,
        x.status,
        x.error
    FROM tally.rollup_runs AS x
    WHERE x.status <> 'skipped'
    ORDER BY x.id DESC
    LIMIT 1
) AS r ON true
LEFT JOIN tally.cron_jobs() AS j ON true;

COMMENT ON VIEW tally.job_status IS
'One row per tally pg_cron job (or one row without jobs): schedule, latest run and message, the latest non-skipped '
'rollup, and the rollup lag (age of the oldest event not yet rolled up).';
