CREATE OR REPLACE VIEW tally.job_status AS
WITH pending AS (
    SELECT
        count(*) AS pending_events,
        min(e.created_at) AS oldest_pending
    FROM tally.events AS e
    INNER JOIN tally.rollup_state AS s ON e.txid >= s.rolled_up_below AND NOT tally.counted(e.txid, s.snapshot)
),

-- Transactions that were open at the last rollup and still are: whatever events they wrote are
-- counted by the first rollup after they commit (nobody else's are delayed). Only their own events
-- can be held back, and uncommitted rows are invisible, so this is the candidate list, oldest first.
-- pg_stat_activity hides other roles' backend_xid from readers without pg_read_all_stats.
held AS (
    SELECT
        a.pid,
        now() - a.xact_start AS age
    FROM pg_catalog.pg_stat_activity AS a
    CROSS JOIN tally.rollup_state AS s
    WHERE
        a.backend_xid IS NOT null
        AND a.backend_xid::text::bigint IN (
            SELECT x.xid::text::bigint % 4294967296 FROM pg_snapshot_xip(s.snapshot) AS x (xid)
        )
    ORDER BY a.xact_start
    LIMIT 1
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
    now() - p.oldest_pending AS rollup_lag,
    h.pid AS oldest_open_xact_pid,
    h.age AS oldest_open_xact_age,
    d.deferred_targets,
    now() - d.since AS deferred_age,
    d.reason AS deferred_reason
FROM pending AS p
LEFT JOIN held AS h ON true
-- Host rows whose rolled-up counts wait in host_backlog (locked by another transaction, or their
-- table's code failed), and why the oldest waits.
CROSS JOIN (
    SELECT
        count(*) AS deferred_targets,
        min(b.since) AS since,
        (array_agg(b.reason ORDER BY b.since))[1] AS reason
    FROM tally.host_backlog AS b
) AS d
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
'rollup, the rollup lag (age of the oldest event not yet rolled up), and the oldest transaction open since before '
'the last rollup (pid, age): only its own events wait for it; host rows whose rolled-up counts wait for a later '
'rollup (deferred_targets, deferred_age, deferred_reason).';

COMMENT ON COLUMN tally.job_status.jobname IS 'pg_cron job name (tally_rollup@DB, tally_housekeeping@DB, tally_prune_runs@DB).';
COMMENT ON COLUMN tally.job_status.schedule IS 'Its cron schedule (GMT).';
COMMENT ON COLUMN tally.job_status.active IS 'Whether pg_cron runs it.';
COMMENT ON COLUMN tally.job_status.last_start IS 'Start of its last run that pg_cron recorded.';
COMMENT ON COLUMN tally.job_status.last_end IS 'End of that run.';
COMMENT ON COLUMN tally.job_status.last_status IS 'pg_cron''s status of that run (succeeded, failed, running).';
COMMENT ON COLUMN tally.job_status.last_message IS 'pg_cron''s message of that run.';
COMMENT ON COLUMN tally.job_status.last_rollup_at IS 'Start of the last tally.rollup() run (rollup_runs), however it was called.';
COMMENT ON COLUMN tally.job_status.last_rollup_status IS 'ok, skipped or failed.';
COMMENT ON COLUMN tally.job_status.last_rollup_error IS 'SQLSTATE and message when it failed.';
COMMENT ON COLUMN tally.job_status.pending_events IS 'Events logged and committed but not yet rolled up.';
COMMENT ON COLUMN tally.job_status.rollup_lag IS 'Age of the oldest of them: how far counters are behind.';
COMMENT ON COLUMN tally.job_status.oldest_open_xact_pid IS
'Backend of the oldest open transaction the next rollup cannot see past (its own events wait for its commit).';
COMMENT ON COLUMN tally.job_status.oldest_open_xact_age IS 'How long that transaction has been open.';
COMMENT ON COLUMN tally.job_status.deferred_targets IS
'Host rows whose rolled-up counts wait in tally.host_backlog for a later rollup.';
COMMENT ON COLUMN tally.job_status.deferred_age IS 'How long the oldest of them has waited.';
COMMENT ON COLUMN tally.job_status.deferred_reason IS
'Why it waits: locked by another transaction, or the error its host table''s code raised.';
