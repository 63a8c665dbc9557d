CREATE OR REPLACE FUNCTION tally.rollup()
RETURNS tally.rollup_runs
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compilation costs seconds here for a plan that runs once and is mostly I/O and hashing.
SET jit = off
-- Grouping a large batch in memory instead of spilling to disk; local to this function.
SET work_mem = '256MB'
-- The batch's txid range must reach the planner as values (a BRIN range scan of the new pages); a
-- generic plan would not know how narrow the range is.
SET plan_cache_mode = force_custom_plan
AS $rollup$
/*
 * Adds the events not yet rolled up to tally.daily_counts (with unique viewers: the events marked
 * first_visit by the debounce claim, tally.claim_visit), the trending scores
 * (after the daily step of their windows, tally.advance_trending()) and the host tables' counters,
 * in one grouped pass over the new events and one transaction, then queues the cache tags of the
 * entities whose counters moved (tally.notify_revalidate: a durable outbox, NOTIFY as the wake-up).
 * So "rollup, then read trending" needs no other call, and trending is never behind the counters.
 * Two statements: the counts (daily rows, host counters, tags, and the batch's score shares as an
 * array), then trending (the shares added to tally.trending_scores, the raised scores that reach
 * tally.trending_top). Returns its tally.rollup_runs row.
 *
 * Exactly once, by snapshot difference (PgQ's batches): an event belongs to the batch when the
 * transaction that inserted it (txid) is visible - committed - in this rollup's snapshot and was not
 * in the previous rollup's (tally.rollup_state.snapshot). Every committed transaction becomes visible
 * in exactly one rollup's snapshot first; an aborted one never does. So a transaction that stays open
 * across rollups delays only its own events, however long it stays open, and is counted by the first
 * rollup after its commit. The calling transaction's own events are never its batch: its snapshot
 * lists that transaction as in progress (tally.mark_running; pg_current_snapshot() shows the caller
 * as committed once a later transaction has ended, and an event it logged after this call would then
 * count as rolled up and never be counted), so they are counted by the first rollup after its commit.
 * Cost: txids below the previous snapshot's xmin were all visible then, and txids at or above this
 * snapshot's xmax are not visible now, so the batch is a BRIN range scan of [previous xmin, current
 * xmax) filtered by tally.counted() of both snapshots (inlined; with the snapshots known to the
 * custom plan, its bounds are constants and the visibility test runs only for txids inside either
 * snapshot's in-progress range).
 *
 * Atomic: the batch is one transaction; a rollup that dies applies nothing and the next one counts
 * everything. Concurrent rollups: the second finds the advisory lock taken and returns 'skipped'.
 * Errors (statement_timeout included) roll the batch back and are recorded as a 'failed' run. A
 * database restored from a dump of a cluster whose transaction ids this one has not reached fails
 * with 55000 until tally.after_restore() has run.
 * SECURITY DEFINER so that tally_admin and pg_cron jobs need no rights on events or host tables.
 * Host counters are added by tally_host.add_counters(), one call per target type, which runs as
 * tally_host_access: a trigger on a host table never runs as tally_owner. A host row that another
 * transaction holds locked is not waited for, and a type whose table's code fails does not fail the
 * rollup (tally.add_host_counters): their shares wait in tally.host_backlog, and every later rollup
 * adds the backlog to its batch's counters until they go through (then their tags are queued).
 */
DECLARE
    v_run tally.rollup_runs;
    v_started timestamptz := clock_timestamp();
    v_previous pg_snapshot;
    v_snapshot pg_snapshot := tally.mark_running(pg_current_snapshot(), pg_current_xact_id_if_assigned());
    v_from bigint;
    v_xmin bigint;
    v_below bigint;
    v_events bigint;
    v_tags text [];
    v_trending tally.trending_state;
    v_shares tally.trending_scores [];
    v_backlog tally.host_backlog [];
BEGIN
    IF NOT tally.lock_rollup(wait => false) THEN
        INSERT INTO tally.rollup_runs (started_at, finished_at, status)
        VALUES (v_started, clock_timestamp(), 'skipped')
        RETURNING * INTO v_run;
        RETURN v_run;
    END IF;

    BEGIN
        SELECT s.snapshot INTO v_previous FROM tally.rollup_state AS s FOR UPDATE;
        -- Never so in the cluster that took the previous snapshot: this database was restored from a
        -- dump of another cluster, whose transaction ids this one has not reached (tally.after_restore).
        IF pg_snapshot_xmax(v_previous) > pg_snapshot_xmax(v_snapshot) THEN
            RAISE EXCEPTION USING
                ERRCODE = '55000',
                MESSAGE = 'the rollup state is ahead of this cluster''s transaction ids',
                DETAIL = 'This database was restored from a dump of another cluster.',
                HINT = 'an operator runs SELECT tally.after_restore() once; see the README, '
                    || '"Moving a database to another cluster"';
        END IF;
        v_from := pg_snapshot_xmin(v_previous)::text::bigint;
        v_xmin := pg_snapshot_xmin(v_snapshot)::text::bigint;
        v_below := pg_snapshot_xmax(v_snapshot)::text::bigint;
        -- The trending windows end today before this batch is added to them (the daily step).
        PERFORM tally.advance_trending();
        PERFORM tally.prepare_salts();
        SELECT * INTO v_trending FROM tally.trending_state AS t;
        -- Shares that earlier rollups could not add to their host rows (tally.add_host_counters): added
        -- with this batch, and kept again, with its share, for a row that still cannot take them.
        WITH owed AS (DELETE FROM tally.host_backlog AS b RETURNING b.*)
        SELECT array_agg(o) INTO v_backlog FROM owed AS o;

        -- Counts: the batch, grouped by day, target and kind, into daily_counts and the host counters;
        -- and its share of the trending scores, per target (its days inside each window,
        -- forward-decayed), into an array. The next statement unnests that array, a constant of its
        -- custom plan, so the planner knows its size: index probes of the scores for a small batch,
        -- one hash join for a large one. (Estimated from the events, the batch is always tiny: their
        -- statistics never cover the newest txids.)
        WITH batch AS MATERIALIZED (
            SELECT
                (e.created_at AT TIME ZONE 'UTC')::date AS day,
                e.target_type,
                e.target_id,
                e.kind,
                count(*) AS n,
                count(*) FILTER (WHERE e.first_visit) AS viewers
            FROM tally.events AS e
            WHERE e.txid >= v_from AND e.txid < v_below
                AND tally.counted(e.txid, v_snapshot) AND NOT tally.counted(e.txid, v_previous)
            GROUP BY 1, 2, 3, 4
        ),
        daily AS (
            -- In key order: consecutive rows then land on the same index pages, in turn, instead of a
            -- page at random each (1M events over 30 days, 294k rows: the whole rollup 3.44 -> 2.99 s).
            INSERT INTO tally.daily_counts AS d (day, target_type, target_id, kind, count, viewers)
            SELECT b.day, b.target_type, b.target_id, b.kind, b.n, b.viewers FROM batch AS b
            ORDER BY b.day, b.target_type, b.target_id, b.kind
            ON CONFLICT (day, target_type, target_id, kind) DO UPDATE SET
                count = d.count + excluded.count,
                viewers = d.viewers + excluded.viewers
        ),
        -- One grouping per target feeds both the host counters and the score shares. A row counts
        -- towards the scores when its kind is weighted and its day is inside the 30-day window
        -- (today's and the 29 before; the 7-day one is its last 7 days).
        targets AS MATERIALIZED (
            SELECT
                w.target_type,
                w.target_id,
                count(*) FILTER (WHERE w.counter_column IS NOT NULL) > 0 AS counted,
                coalesce(sum(w.n) FILTER (WHERE w.counter_column = 'views'), 0)::bigint AS views,
                coalesce(sum(w.n) FILTER (WHERE w.counter_column = 'copies'), 0)::bigint AS copies,
                coalesce(sum(w.n) FILTER (WHERE w.counter_column = 'downloads'), 0)::bigint AS downloads,
                coalesce(sum(w.n) FILTER (WHERE w.counter_column = 'uses'), 0)::bigint AS uses,
                coalesce(sum(w.score) FILTER (WHERE w.scored AND w.day > v_trending.day - 7), 0) AS score_7d,
                coalesce(sum(w.n) FILTER (WHERE w.scored AND w.day > v_trending.day - 7), 0)::bigint AS events_7d,
                coalesce(sum(w.viewers) FILTER (WHERE w.scored AND w.day > v_trending.day - 7), 0)::bigint
                    AS viewers_7d,
                coalesce(sum(w.score) FILTER (WHERE w.scored), 0) AS score_30d,
                coalesce(sum(w.n) FILTER (WHERE w.scored), 0)::bigint AS events_30d,
                coalesce(sum(w.viewers) FILTER (WHERE w.scored), 0)::bigint AS viewers_30d,
                max(w.day) FILTER (WHERE w.scored) AS last_day
            FROM (
                SELECT
                    b.target_type,
                    b.target_id,
                    b.day,
                    b.n,
                    k.counter_column,
                    k.weight > 0 AND b.day > v_trending.day - 30 AND b.day <= v_trending.day AS scored,
                    b.n * k.weight::double precision * tally.growth(v_trending.epoch, b.day, v_trending.half_life)
                        AS score,
                    CASE WHEN k.counter_column = 'views' THEN b.viewers ELSE 0 END AS viewers
                FROM batch AS b
                INNER JOIN tally.kinds AS k ON k.kind = b.kind
                UNION ALL
                SELECT o.target_type, o.target_id, NULL, c.n, c.counter_column, false, 0, 0
                FROM unnest(v_backlog) AS o
                CROSS JOIN LATERAL (
                    VALUES ('views', o.views), ('copies', o.copies), ('downloads', o.downloads), ('uses', o.uses)
                ) AS c (counter_column, n)
                WHERE c.n <> 0
            ) AS w
            GROUP BY w.target_type, w.target_id
        ),
        per_type AS (
            SELECT
                t.target_type,
                array_agg(t.target_id ORDER BY t.target_id) AS ids,
                array_agg(t.views ORDER BY t.target_id) AS views,
                array_agg(t.copies ORDER BY t.target_id) AS copies,
                array_agg(t.downloads ORDER BY t.target_id) AS downloads,
                array_agg(t.uses ORDER BY t.target_id) AS uses
            FROM targets AS t
            WHERE t.counted
            GROUP BY t.target_type
        ),
        updated AS (
            SELECT t.target_type, u.target_id, u.tag, u.deferred
            FROM per_type AS t
            CROSS JOIN LATERAL tally.add_host_counters(t.target_type, t.ids, t.views, t.copies, t.downloads, t.uses)
                AS u
        ),
        -- Rows that could not be updated now: their shares wait for a later rollup.
        deferred AS (
            INSERT INTO tally.host_backlog (target_type, target_id, views, copies, downloads, uses, since, reason)
            SELECT t.target_type, t.target_id, t.views, t.copies, t.downloads, t.uses,
                coalesce(o.since, now()), u.deferred
            FROM updated AS u
            INNER JOIN targets AS t ON t.target_type = u.target_type AND t.target_id = u.target_id
            LEFT JOIN unnest(v_backlog) AS o ON o.target_type = u.target_type AND o.target_id = u.target_id
            WHERE u.deferred IS NOT NULL
        )
        SELECT
            (SELECT coalesce(sum(b.n), 0)::bigint FROM batch AS b),
            ARRAY(SELECT u.tag FROM updated AS u WHERE u.tag IS NOT NULL),
            -- Ranks are left out: the next statement computes them from the scores it writes.
            ARRAY(
                SELECT ROW(
                    x.target_type, x.target_id, x.score_7d, NULL, x.events_7d, x.viewers_7d,
                    x.score_30d, NULL, x.events_30d, x.viewers_30d, x.last_day
                )::tally.trending_scores
                FROM targets AS x
                WHERE x.events_30d > 0
            )
        INTO v_events, v_tags, v_shares;

        -- Trending: the shares added to the scores, and the raised scores that reach the top. Added by
        -- an UPDATE of the targets that have scores and an INSERT of the others, not by an upsert: only
        -- the rollup writes scores between daily steps (under its advisory lock), and ON CONFLICT
        -- would lock each row before updating it (a WAL record per row).
        WITH raised AS (
            UPDATE tally.trending_scores AS t SET
                score_7d = t.score_7d + x.score_7d,
                rank_7d = tally.round_score(t.score_7d + x.score_7d),
                events_7d = t.events_7d + x.events_7d,
                viewers_7d = t.viewers_7d + x.viewers_7d,
                score_30d = t.score_30d + x.score_30d,
                rank_30d = tally.round_score(t.score_30d + x.score_30d),
                events_30d = t.events_30d + x.events_30d,
                viewers_30d = t.viewers_30d + x.viewers_30d,
                last_day = greatest(t.last_day, x.last_day)
            FROM unnest(v_shares) AS x
            WHERE t.target_type = x.target_type AND t.target_id = x.target_id
            RETURNING
                t.target_type, t.target_id, t.score_7d, t.rank_7d, t.viewers_7d, t.score_30d, t.rank_30d, t.viewers_30d,
                x.events_7d > 0 AS in_7d
        ),
        added AS (
            INSERT INTO tally.trending_scores (
                target_type, target_id, score_7d, rank_7d, events_7d, viewers_7d,
                score_30d, rank_30d, events_30d, viewers_30d, last_day
            )
            SELECT
                x.target_type, x.target_id, x.score_7d, tally.round_score(x.score_7d), x.events_7d, x.viewers_7d,
                x.score_30d, tally.round_score(x.score_30d), x.events_30d, x.viewers_30d, x.last_day
            FROM unnest(v_shares) AS x
            -- The targets raised did not find (a hash of the rows it returned, not of the table).
            WHERE NOT EXISTS (
                SELECT FROM raised AS r
                WHERE r.target_type = x.target_type AND r.target_id = x.target_id
            )
            RETURNING
                target_type, target_id, score_7d, rank_7d, viewers_7d, score_30d, rank_30d, viewers_30d,
                events_7d > 0 AS in_7d
        ),
        -- The scores the batch raised, per window.
        scored AS (
            SELECT
                w.period,
                r.target_type,
                r.target_id,
                CASE w.period WHEN 7 THEN r.rank_7d ELSE r.rank_30d END AS rank,
                CASE w.period WHEN 7 THEN r.score_7d ELSE r.score_30d END AS score,
                CASE w.period WHEN 7 THEN r.viewers_7d ELSE r.viewers_30d END AS viewers
            FROM (SELECT * FROM raised UNION ALL SELECT * FROM added) AS r
            INNER JOIN (VALUES (7::smallint), (30::smallint)) AS w (period) ON w.period = 30 OR r.in_7d
        ),
        -- A batch only raises scores, so the best rows afterwards are the best of the old top and the
        -- raised rows that reach its last rank: only those touch trending_top (trimmed below).
        thresholds AS MATERIALIZED (
            SELECT
                w.period,
                y.target_type,
                (
                    SELECT x.rank FROM tally.trending_top AS x
                    WHERE x.period = w.period AND x.target_type = y.target_type
                    ORDER BY x.rank DESC, x.target_id
                    OFFSET tally.top_size() - 1
                    LIMIT 1
                ) AS rank
            FROM (VALUES (7::smallint), (30::smallint)) AS w (period)
            CROSS JOIN tally.target_types AS y
        )
        INSERT INTO tally.trending_top AS p (period, target_type, target_id, rank, score, viewers)
        SELECT c.period, c.target_type, c.target_id, c.rank, c.score, c.viewers
        FROM (
            -- Of the raised rows that reach the last rank (a prefix of the order), only the best
            -- top_size() can be among the best afterwards.
            SELECT
                r.*,
                row_number() OVER (PARTITION BY r.period, r.target_type ORDER BY r.rank DESC, r.target_id) AS n
            FROM scored AS r
            INNER JOIN thresholds AS h ON h.period = r.period AND h.target_type = r.target_type
            WHERE h.rank IS NULL OR r.rank >= h.rank
        ) AS c
        WHERE c.n <= tally.top_size()
        ON CONFLICT (period, target_type, target_id) DO UPDATE SET
            rank = excluded.rank, score = excluded.score, viewers = excluded.viewers;

        -- Trim the top back to top_size() rows per period and type (by ctid: one pass, whatever the
        -- planner believes about a table autovacuum has not analysed yet).
        DELETE FROM tally.trending_top AS p
        WHERE p.ctid = ANY (ARRAY(
            SELECT r.ctid
            FROM (
                SELECT
                    t.ctid,
                    row_number() OVER (PARTITION BY t.period, t.target_type ORDER BY t.rank DESC, t.target_id) AS n
                FROM tally.trending_top AS t
            ) AS r
            WHERE r.n > tally.top_size()
        ));

        UPDATE tally.rollup_state AS s SET snapshot = v_snapshot, rolled_up_below = v_xmin, last_run_at = now();
        UPDATE tally.settings AS s SET rolled_up_xmax = v_below;  -- log_event's copy of the xmax (migration 0019)
        PERFORM tally.summarize_new_events();
        PERFORM tally.notify_revalidate(v_tags);

        INSERT INTO tally.rollup_runs (started_at, finished_at, status, events, entities, from_txid, to_txid)
        VALUES (v_started, clock_timestamp(), 'ok', v_events, cardinality(v_tags), v_from, v_below)
        RETURNING * INTO v_run;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        INSERT INTO tally.rollup_runs (started_at, finished_at, status, from_txid, error)
        VALUES (v_started, clock_timestamp(), 'failed', v_from, format('%s: %s', SQLSTATE, SQLERRM))
        RETURNING * INTO v_run;
    END;
    RETURN v_run;
END
$rollup$;

COMMENT ON FUNCTION tally.rollup() IS
'Adds events not yet rolled up to daily_counts, trending scores and host counters exactly once, queues cache tags, '
'and returns the run (status ok, skipped or failed).';
