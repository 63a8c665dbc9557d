CREATE OR REPLACE FUNCTION tally.forget_user(user_id text)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
 * SECURITY DEFINER (owner tally_owner) so that tally_admin needs no rights on events.
 */
#variable_conflict use_column
DECLARE
    v_now timestamptz := tally.now();
    v_mapping uuid := gen_random_uuid();
    v_result jsonb := '{}';
    v_rows bigint;
BEGIN
    IF forget_user.user_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'user_id must not be NULL';
    END IF;
    DELETE FROM tally.debounce AS d
    WHERE d.key IN (
        SELECT tally.debounce_key(e.target_type, e.target_id, e.kind, tally.visitor_key(s.inner_pad, s.outer_pad, i.identity))
        FROM tally.events AS e
        CROSS JOIN (SELECT row('user', forget_user.user_id)::text AS identity) AS i
        CROSS JOIN tally.visitor_salts AS s
        WHERE e.user_id = forget_user.user_id AND e.created_at >= tally.debounce_horizon(v_now)
    );
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('debounce', v_rows);

    UPDATE tally.events AS e SET
        user_id = NULL,
        ip = NULL,
        user_agent_id = NULL,
        referrer = NULL,
        metadata = NULL,
        visitor = CASE WHEN e.visitor IS NOT NULL THEN md5(row(v_mapping, e.visitor)::text)::uuid END
    WHERE e.user_id = forget_user.user_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('events', v_rows);

    DELETE FROM tally.rate_limit_state AS r
    WHERE r.key IN (SELECT tally.rate_limit_key('user:' || forget_user.user_id, k.kind) FROM tally.kinds AS k);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('rate_limit_state', v_rows);

    DELETE FROM tally.rate_limit_rejections AS r WHERE r.key = 'user:' || forget_user.user_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_result || jsonb_build_object('rate_limit_rejections', v_rows);
END
$$;

COMMENT ON FUNCTION tally.forget_user(text) IS
'Erasure: anonymises the user''s raw events and deletes their debounce and rate-limit state and rejections; '
'counters and trending are unchanged. Returns the rows changed per table. For tally_admin.';
