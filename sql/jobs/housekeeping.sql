CREATE OR REPLACE FUNCTION tally.housekeeping()
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Days, months and partition bounds are UTC whatever the caller's TimeZone.
SET timezone = 'UTC'
AS $$
/*
 * Daily upkeep, so that no side table grows without bound:
 *   - debounce entries of past days older than the longest debounce window, rate-limit windows that have passed,
 *     event_ids past settings.event_id_ttl: none of them can decide an outcome any more;
 *   - rate-limit rejections and rollup runs older than settings.run_retention, cache tags no
 *     consumer acknowledged within settings.outbox_retention;
 *   - user agents unused for longer than settings.user_agent_ttl (a bound that holds whatever
 *     event_retention is; events older than that show no user agent);
 *   - personal data past settings.pii_retention, salts and visitor keys older than yesterday
 *     (tally.clear_personal_data());
 *   - the per-backend discard counters of days before yesterday, folded into one row per day and reason;
 *   - the daily step of the trending windows, should no rollup have run today (unless a rollup is
 *     running: that one does it);
 *   - event partitions ahead (settings.partitions_ahead), and raw partitions wholly older than
 *     settings.event_retention whose events are all rolled up (their counts live on in daily_counts);
 *     neither waits long for tally.events (tally.lock_briefly): while a transaction holds it open,
 *     they are left to the next run (partitions_kept_busy), rather than stall ingestion behind it.
 * Returns what it removed or created. SECURITY DEFINER: it writes tables only the owner may touch.
 */
DECLARE
    v_settings tally.settings;
    v_now timestamptz := tally.now();
    v_state tally.rollup_state;
    v_result jsonb := '{}';
    v_rows bigint;
    v_partition record;
    v_pending boolean;
    v_dropped text[] := '{}';
    v_busy text[] := '{}';
BEGIN
    SELECT * INTO v_settings FROM tally.settings AS s;
    SELECT * INTO v_state FROM tally.rollup_state AS s;

    -- Rows that ingestion writes too (debounce slots, rate-limit counters, user agents, discard shards)
    -- are deleted only if no other transaction holds them (SKIP LOCKED; the next run takes the rest).
    -- A held row is one a call is still using: a transaction begun just before a window ended still
    -- adds to that window's counter, and cron starts this job on the minute, as the windows end.
    -- Waiting for it made housekeeping a link in lock cycles with transactions that log more than
    -- once, failing it with 40P01 (reproduced), and meanwhile held up calls that wanted its rows.
    -- The rows are locked, then deleted by their ctid (a TID scan; a row updated since this statement's
    -- snapshot is left to the next run): per million expired slots 0.55 s, against 1.24 s joined back by
    -- key and 0.27 s for the plain DELETE that waited.

    -- Today's slots stay until the day is over: a slot that exists marks its visitor as seen today
    -- (tally.claim_visit, unique viewers).
    DELETE FROM tally.debounce AS d
    WHERE d.ctid = ANY(ARRAY(
        SELECT o.ctid FROM tally.debounce AS o WHERE o.last_at < tally.debounce_horizon(v_now)
        FOR UPDATE SKIP LOCKED
    ));
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('debounce', v_rows);

    -- Windows that ended a whole window ago: a call begun just before a window ended may still add to
    -- its counter, and would wait for this transaction had it deleted the row first.
    DELETE FROM tally.rate_limit_state AS r
    WHERE r.ctid = ANY(ARRAY(
        SELECT o.ctid FROM tally.rate_limit_state AS o
        WHERE o.window_start < v_now - 2 * (SELECT max(k.rate_window) FROM tally.kinds AS k)
        FOR UPDATE SKIP LOCKED
    ));
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('rate_limit_state', v_rows);

    DELETE FROM tally.event_ids AS i WHERE i.seen_at < v_now - v_settings.event_id_ttl;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('event_ids', v_rows);

    DELETE FROM tally.rate_limit_rejections AS r WHERE r.window_start < v_now - v_settings.run_retention;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('rate_limit_rejections', v_rows);

    DELETE FROM tally.user_agents AS u
    WHERE u.ctid = ANY(ARRAY(
        SELECT o.ctid FROM tally.user_agents AS o WHERE o.last_used < (v_now - v_settings.user_agent_ttl)::date
        FOR UPDATE SKIP LOCKED
    ));
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('user_agents', v_rows);

    v_result := v_result || jsonb_build_object('personal_data', tally.clear_personal_data());
    v_result := v_result || jsonb_build_object('visitor_salts_created', tally.prepare_salts());

    -- Days before yesterday only: a backend whose transaction began before midnight still counts into
    -- yesterday's row, and must never wait for this transaction (count_discard: no discard waits).
    WITH folded AS (
        DELETE FROM tally.discards AS d
        WHERE d.ctid = ANY(ARRAY(
            SELECT o.ctid FROM tally.discards AS o WHERE o.day < v_now::date - 1 AND o.shard <> 0
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING d.day, d.target_type, d.kind, d.reason, d.count
    )
    INSERT INTO tally.discards AS d (day, target_type, kind, reason, shard, count)
    SELECT f.day, f.target_type, f.kind, f.reason, 0, sum(f.count) FROM folded AS f
    GROUP BY f.day, f.target_type, f.kind, f.reason
    ON CONFLICT (day, target_type, kind, reason, shard) DO UPDATE SET count = d.count + excluded.count;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('discard_days_folded', v_rows);

    DELETE FROM tally.revalidation_outbox AS o WHERE o.queued_at < now() - v_settings.outbox_retention;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('revalidation_tags_expired', v_rows);

    DELETE FROM tally.rollup_runs AS r WHERE r.started_at < now() - v_settings.run_retention;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('rollup_runs', v_rows);

    -- The daily step takes the rollup's lock, which a rollup holds while it may wait for rows this
    -- transaction has written (a salt of a new day, made by both): waiting for it here made a lock
    -- cycle that failed one of them (40P01, reproduced). A rollup that holds it does the step itself,
    -- first thing. Before the partitions: creating one holds tally.events to the end of this
    -- transaction, and ingestion with it, so nothing slow may follow.
    v_result := v_result || jsonb_build_object('trending', CASE
        WHEN tally.lock_rollup(wait => false) THEN tally.advance_trending()
        ELSE 'left to the running rollup'
    END);
    v_result := v_result || jsonb_build_object('partitions_created', tally.create_partitions());

    IF v_settings.event_retention IS NOT NULL THEN
        FOR v_partition IN
            SELECT c.relname, to_date(substr(c.relname, 9), 'YYYY_MM') AS month
            FROM pg_inherits AS i
            INNER JOIN pg_class AS c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'tally.events'::regclass AND c.relname ~ '^events_p[0-9]{4}_[0-9]{2}$'
            ORDER BY c.relname
        LOOP
            CONTINUE WHEN v_partition.month + interval '1 month' > v_now - v_settings.event_retention;
            EXECUTE format(
                'SELECT EXISTS (SELECT 1 FROM tally.%I AS e WHERE e.txid >= $1 AND NOT tally.counted(e.txid, $2))',
                v_partition.relname
            ) INTO v_pending USING v_state.rolled_up_below, v_state.snapshot;
            CONTINUE WHEN v_pending;
            -- DROP takes the parent too; never queued for long behind an open transaction, which
            -- would stall ingestion with it (tally.lock_briefly): a busy table keeps the partition
            -- until the next run (and so do the rest: the table is as busy for them).
            IF cardinality(v_busy) > 0 OR NOT tally.lock_briefly(
                ARRAY['tally.events', format('tally.%I', v_partition.relname)]::regclass[],
                ARRAY['ACCESS EXCLUSIVE', 'ACCESS EXCLUSIVE']
            ) THEN
                v_busy := v_busy || v_partition.relname::text;
                CONTINUE;
            END IF;
            EXECUTE format('DROP TABLE tally.%I', v_partition.relname);
            v_dropped := v_dropped || v_partition.relname::text;
        END LOOP;
    END IF;
    RETURN v_result || jsonb_build_object('partitions_dropped', to_jsonb(v_dropped))
        || jsonb_build_object('partitions_kept_busy', to_jsonb(v_busy));
END
$$;

COMMENT ON FUNCTION tally.housekeeping() IS
'Prunes expired debounce, rate-limit and event_id state and old run logs, creates partitions ahead and drops raw '
'partitions past event_retention.';

CREATE OR REPLACE FUNCTION tally.prune_job_runs()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * pg_cron never prunes cron.job_run_details; this deletes the rows of this database's tally jobs
 * older than settings.run_retention, on demand (the job tally_prune_runs@<db> does it daily). It runs
 * as the caller, whom pg_cron's row security lets delete the runs of its own jobs (a superuser: all);
 * without pg_cron it does nothing.
 */
DECLARE
    v_retention interval;
BEGIN
    IF tally.cron_location() IS NULL THEN
        RETURN;
    END IF;
    SELECT s.run_retention INTO v_retention FROM tally.settings AS s;
    PERFORM tally.cron_exec(format(
        'DELETE FROM cron.job_run_details AS d USING cron.job AS j'
        ' WHERE d.jobid = j.jobid AND j.jobname = ANY (%L::text []) AND d.end_time < now() - %L::interval',
        tally.job_names(), v_retention
    ));
END
$$;

COMMENT ON FUNCTION tally.prune_job_runs() IS
'Deletes pg_cron run details of this database''s tally jobs older than settings.run_retention.';
