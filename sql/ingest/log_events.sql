CREATE OR REPLACE FUNCTION tally.log_events(events jsonb)
RETURNS TABLE (ord integer, outcome tally.outcome, error text, message text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The statements below sort, group and join arrays of up to batch_max rows: costs the planner rates
-- high enough to JIT-compile, which takes longer than running them.
SET jit = off
AS $$
/*
 * Records a JSON array of events (objects with log_event's parameter names) and returns one row per
 * element, in input order: its outcome, or for an element log_event would have refused, the SQLSTATE
 * and message it would have raised (one bad element never rejects the batch).
 *
 * The result is what calling log_event once per element, in array order, would have done: the same
 * outcomes and the same stored rows and side state. The guards run set-based, a few statements per
 * batch whatever its size, in log_event's order:
 *   1. parse (tally.parse_batch): fields, hygiene, kinds, user agents, bot verdicts, event_ids
 *      already seen, visitor keys, rate-limit keys; no write
 *   2. rate limits (tally.apply_rate_limits): the batch's hits added to its counters in one upsert
 *      (key order, which locks them); an element is over when the stored hits plus those of the
 *      batch's elements up to it pass the limit
 *   3. event_ids claimed; user agents recorded; targets probed (tally_host.probe_many, per type)
 *   4. debounce: per slot, the first element of the batch claims it and any later one is debounced
 *      (all share one clock reading); yesterday's slots first, as claim_visit does
 *   5. the admitted rows inserted in one statement (vouched for: the trigger does not probe them
 *      again), then the discards counted
 * Every lock is taken in key order within its step, and the steps in log_event's order, so batches
 * and single calls never wait on each other in a cycle within one statement. Two open transactions
 * that each log more than once still can; the deadlock detector then fails one wait, and a batch
 * ends as a log_event call does: steps 2 to 5 run in one subtransaction, so nothing of them is
 * stored, and every element still going gets the fail-closed outcome of the step the batch waited in
 * (rate_limited where a rate-limit counter applies, duplicate where an event_id does, otherwise
 * debounced) instead of a 40P01 that would abort the caller's transaction.
 *
 * The clock override's per-element 'at' cannot share one clock reading: a batch that has one is
 * logged element by element (tests and demos only; the override is off in production).
 *
 * Refused as a whole, with SQLSTATE 22023: a value that is not a JSON array, longer than
 * settings.batch_max, or larger than 64 kB per element of batch_max (which bound its memory); with
 * 55000 while the database waits for tally.after_restore() (tally.refuse_restored).
 */
#variable_conflict use_column
DECLARE
    v_batch_max integer;
    v_count integer;
    v_override boolean;
    v_now timestamptz;
    v_day date;
    v_items tally.ingest_item [];
    v_state tally.ingest_state [];
    v_has_at boolean;
    v_limited boolean;
    v_token text;
    v_step text;
    v_xid bigint;
    v_rolled_up_xmax bigint;
BEGIN
    IF jsonb_typeof(log_events.events) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = 'log_events takes a JSON array of event objects';
    END IF;
    SELECT
        s.batch_max,
        s.clock_override,
        CASE  -- tally.now(), without a second read of settings
            WHEN s.clock_override
                THEN coalesce(nullif(current_setting('tally.clock', true), '')::timestamptz, now())
            ELSE now()
        END,
        pg_current_xact_id()::text::bigint,
        s.rolled_up_xmax
    INTO v_batch_max, v_override, v_now, v_xid, v_rolled_up_xmax
    FROM tally.settings AS s;
    IF v_xid < v_rolled_up_xmax THEN  -- see log_event
        PERFORM tally.refuse_restored(v_xid);
    END IF;
    v_count := jsonb_array_length(log_events.events);
    IF v_count > v_batch_max THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = format('a batch holds at most %s events (settings.batch_max); this one has %s', v_batch_max, v_count),
            HINT = 'split it, or raise tally.settings.batch_max';
    END IF;
    -- Every element is cut to bounded fields (identifiers, user agent, referrer, metadata), but only
    -- after it has been read: the input itself is bounded too, at 64 kB per element on average (a
    -- well-formed element needs under 7 kB at the default limits).
    IF pg_column_size(log_events.events) > v_batch_max::bigint * 65536 THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = format(
                'a batch holds at most %s bytes of JSON (64 kB per element of settings.batch_max)',
                v_batch_max::bigint * 65536
            );
    END IF;
    IF v_count = 0 THEN
        RETURN;
    END IF;
    v_day := (v_now AT TIME ZONE 'UTC')::date;

    -- 1. Everything that needs no write, for every element, in one query.
    SELECT p.items, p.state, p.has_at, p.limited INTO v_items, v_state, v_has_at, v_limited
    FROM tally.parse_batch(log_events.events, v_now) AS p;

    IF v_has_at AND v_override THEN
        RETURN QUERY SELECT * FROM tally.log_events_in_order(log_events.events, v_items);
        RETURN;
    END IF;

    -- Steps 2 to 5 write, and wait on rows other transactions may hold: in one subtransaction, so that
    -- a lock cycle (two open transactions that each log more than once) ends as it does in log_event.
    BEGIN
        v_step := 'rate_limit';
        -- 2. Rate limits (tally.apply_rate_limits), for a batch with an element they apply to.
        IF v_limited THEN
            v_state := tally.apply_rate_limits(v_items, v_state);
        END IF;

        v_step := 'event_id';
        -- 3. Claim the event_ids of the elements still going (a concurrent retry may have claimed one
        -- since step 1: that element is a duplicate), record their user agents, probe their targets.
        IF EXISTS (
            SELECT 1 FROM ROWS FROM (unnest(v_items), unnest(v_state)) AS r
            WHERE r.error IS NULL AND r.outcome IS NULL AND r.event_id IS NOT NULL
        ) THEN
            SELECT array_agg(
                row(
                    CASE
                        WHEN r.error IS NULL AND r.outcome IS NULL AND r.event_id IS NOT NULL AND c.event_id IS NULL
                            THEN 'duplicate'
                        ELSE r.outcome
                    END,
                    r.reach, r.ip_over, r.user_over, NULL, r.stored_agent, r.stored_visitor, NULL
                )::tally.ingest_state
                ORDER BY r.ord
            )
            INTO v_state
            FROM ROWS FROM (unnest(v_items), unnest(v_state)) AS r
            LEFT JOIN tally.claim_event_ids(v_items, v_state) AS c ON c.event_id = r.event_id;
        END IF;

        v_step := 'store';
        v_state := tally.store_user_agents(v_items, v_state, v_day);
        v_state := tally.probe_targets(v_items, v_state);

        -- 4. Debounce, and first visits; a missing salt for today is made once for the batch.
        v_state := tally.claim_visits(v_items, v_state, v_now);

        -- 5. Store, vouching for the rows with a token only this statement knows.
        v_token := gen_random_uuid()::text;
        PERFORM set_config('tally.voucher', v_token, true);
        INSERT INTO tally.events (
            created_at, target_type, target_id, kind, user_id, visitor, ip, user_agent_id, referrer, metadata,
            first_visit, vouched
        )
        SELECT
            v_now, r.target_type, r.canonical_id, r.kind, r.user_id, r.stored_visitor, r.ip, r.stored_agent,
            r.referrer, r.metadata, r.first_visit, v_token::uuid
        FROM ROWS FROM (unnest(v_items), unnest(v_state)) AS r
        WHERE r.error IS NULL AND r.outcome IS NULL
        ORDER BY r.ord;
        PERFORM set_config('tally.voucher', '', true);
    EXCEPTION WHEN deadlock_detected THEN
        -- Nothing of steps 2 to 5 is stored. Every element still going gets the fail-closed outcome of
        -- the step the batch waited in, as its own log_event call would have: rate_limited for one
        -- with a rate-limit counter, duplicate for one with an event_id, and otherwise debounced.
        SELECT array_agg(
            row(
                CASE
                    WHEN r.error IS NOT NULL OR r.outcome IS NOT NULL THEN r.outcome
                    WHEN v_step = 'rate_limit' AND (r.ip_hash IS NOT NULL OR r.user_hash IS NOT NULL) THEN 'rate_limited'
                    WHEN v_step = 'event_id' AND r.event_id IS NOT NULL THEN 'duplicate'
                    ELSE 'debounced'
                END,
                r.reach, r.ip_over, r.user_over, NULL, NULL, NULL, NULL
            )::tally.ingest_state
            ORDER BY r.ord
        )
        INTO v_state
        FROM ROWS FROM (unnest(v_items), unnest(v_state)) AS r;
    END;

    -- Discards: one row per backend and (day, type, kind, reason), as count_discard keeps them.
    INSERT INTO tally.discards AS d (day, target_type, kind, reason, shard, count)
    SELECT v_day, left(r.target_type, 64), left(r.kind, 64), r.outcome, pg_backend_pid(), count(*)
    FROM ROWS FROM (unnest(v_items), unnest(v_state)) AS r
    WHERE r.error IS NULL AND r.outcome IS NOT NULL
    GROUP BY left(r.target_type, 64), left(r.kind, 64), r.outcome
    ON CONFLICT (day, target_type, kind, reason, shard) DO UPDATE SET count = d.count + excluded.count;

    RETURN QUERY
    SELECT r.ord, CASE WHEN r.error IS NULL THEN coalesce(r.outcome, 'logged') END, r.error, r.message
    FROM ROWS FROM (unnest(v_items), unnest(v_state)) AS r
    ORDER BY r.ord;
END
$$;

COMMENT ON FUNCTION tally.log_events(jsonb) IS
'Records a JSON array of events (log_event''s parameters as keys) as one call per element would, set-based; '
'returns (ord, outcome, error, message) per element. Raises 22023 for a non-array, more elements than '
'settings.batch_max, or more than 64 kB of JSON per element of batch_max; 55000 until tally.after_restore() has '
'run in a database restored into a cluster that is behind.';
