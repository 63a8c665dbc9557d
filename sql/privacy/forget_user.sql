CREATE OR REPLACE FUNCTION tally.forget_user(user_id text)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Its scans of the raw events are rated above JIT's thresholds, and compiling took 1.3 s of 1.6 s
-- (2M events): far longer than running them.
SET jit = off
AS $$
/*
 * Erasure on request: removes what links stored rows to this application user, and returns the
 * rows changed per table. Counters, daily_counts and trending do not change: they hold no personal
 * data, and the user's events stay (anonymised) so that a later rollup still counts them.
 *   - events: user_id, ip, user agent, referrer and metadata set to NULL; the visitor key replaced
 *     by a random mapping of itself (one per call, so that the user's events of a day still share
 *     one key; the first_visit marks, which unique viewers count, stay as they are);
 *   - debounce slots claimed under the user's keys (every salt still alive): the user counts again
 *     at once, as any new visitor would;
 *   - rate-limit state and rejections of the user's key.
 * A sequential read of the raw events (user_id is not indexed: an index would cost every call).
 *
 * It never holds up ingestion for long, nor fails in a lock cycle with it. The debounce slots and
 * rate-limit rows it deletes are the ones log_event and log_events lock, and a transaction that calls
 * them more than once holds some while it waits for others: a forget_user that waited for one of those
 * rows while holding another was failed by the deadlock detector (reproduced, 40P01), and meanwhile
 * held up that user's calls.
 * So it first anonymises the events (one pass, which also finds the keys of the slots to delete;
 * ingestion never locks existing events), and then deletes the side rows in attempts that wait at
 * most 50 ms for a lock (lock_timeout) and give back what they took when they fail: up to 40
 * attempts, 0.05 to 0.25 s apart. Raises 55P03 if other transactions held those rows throughout
 * (about 8 s); the erasure is then undone whole, to be called again.
 * SECURITY DEFINER (owner tally_owner) so that tally_admin needs no rights on events.
 */
#variable_conflict use_column
DECLARE
    v_now timestamptz := tally.now();
    v_mapping uuid := gen_random_uuid();
    v_saved text := current_setting('lock_timeout');
    v_slots uuid [];
    v_counters uuid [];
    v_events bigint;
    v_slots_deleted bigint;
    v_counters_deleted bigint;
    v_rejections bigint;
BEGIN
    IF forget_user.user_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'user_id must not be NULL';
    END IF;
    -- One pass over the raw events anonymises them and returns what keys the debounce slots claimed
    -- under the user's keys (under every salt still alive) for the recent ones.
    WITH forgotten AS (
        UPDATE tally.events AS e SET
            user_id = NULL,
            ip = NULL,
            user_agent_id = NULL,
            referrer = NULL,
            metadata = NULL,
            visitor = CASE WHEN e.visitor IS NOT NULL THEN md5(row(v_mapping, e.visitor)::text)::uuid END
        WHERE e.user_id = forget_user.user_id
        RETURNING e.target_type, e.target_id, e.kind, e.created_at
    )
    SELECT
        (SELECT count(*) FROM forgotten),
        (
            SELECT array_agg(DISTINCT tally.debounce_key(f.target_type, f.target_id, f.kind, tally.visitor_key(s.inner_pad, s.outer_pad, i.identity)))
            FROM forgotten AS f
            CROSS JOIN (SELECT row('user', forget_user.user_id)::text AS identity) AS i
            CROSS JOIN tally.visitor_salts AS s
            WHERE f.created_at >= tally.debounce_horizon(v_now)
        )
    INTO v_events, v_slots;
    -- The user's rate-limit counters: one per kind.
    SELECT array_agg(tally.rate_limit_key('user:' || forget_user.user_id, k.kind)) INTO v_counters FROM tally.kinds AS k;

    FOR v_attempt IN 1 .. 40 LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '50ms', true);
            DELETE FROM tally.debounce AS d WHERE d.key = ANY(v_slots);
            GET DIAGNOSTICS v_slots_deleted = ROW_COUNT;
            DELETE FROM tally.rate_limit_state AS r WHERE r.key = ANY(v_counters);
            GET DIAGNOSTICS v_counters_deleted = ROW_COUNT;
            DELETE FROM tally.rate_limit_rejections AS r WHERE r.key = 'user:' || forget_user.user_id;
            GET DIAGNOSTICS v_rejections = ROW_COUNT;
            PERFORM set_config('lock_timeout', v_saved, true);
            RETURN jsonb_build_object(
                'debounce', v_slots_deleted,
                'events', v_events,
                'rate_limit_state', v_counters_deleted,
                'rate_limit_rejections', v_rejections
            );
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            -- The subtransaction gave back the rows it locked and restored lock_timeout.
            PERFORM pg_sleep(0.05 + random() * 0.2);
        END;
    END LOOP;
    RAISE EXCEPTION USING
        ERRCODE = '55P03',
        MESSAGE = 'forget_user could not delete the user''s debounce and rate-limit rows: other transactions kept them locked',
        HINT = 'call it again; nothing was changed';
END
$$;

COMMENT ON FUNCTION tally.forget_user(text) IS
'Erasure: anonymises the user''s raw events and deletes their debounce and rate-limit state and rejections; '
'counters and trending are unchanged. Returns the rows changed per table. Raises 55P03, changing nothing, when '
'other transactions keep the user''s debounce or rate-limit rows locked for about 8 s. For tally_admin.';
