CREATE OR REPLACE FUNCTION tally.clear_personal_data()
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The privacy part of housekeeping (which calls it, as tally_owner), so that personal data lives no
 * longer than it is needed:
 *   - events older than settings.pii_retention lose their ip and user agent; rate-limit rejections
 *     that old keep an address prefix only (IPv4 /24, IPv6 /48) and user keys become 'user:*';
 *   - user agents that no event references any more (last used before that cutoff) are deleted;
 *   - salts of days before yesterday are deleted: no stored visitor key can then be linked to an
 *     address, user or session.
 * Cost grows with new work: pii_state.cleared_below remembers where the previous run stopped, so each
 * run reads only the rows that crossed the cutoff since (a BRIN range of events.created_at).
 * Returns the rows changed per table.
 */
DECLARE
    v_now timestamptz := tally.now();
    v_today date := (v_now AT TIME ZONE 'UTC')::date;
    v_cutoff timestamptz;
    v_from timestamptz;
    v_result jsonb := '{}';
    v_rows bigint;
BEGIN
    SELECT v_now - s.pii_retention INTO v_cutoff FROM tally.settings AS s;
    SELECT p.cleared_below INTO v_from FROM tally.pii_state AS p FOR UPDATE;

    IF v_cutoff > v_from THEN
        UPDATE tally.events AS e SET ip = NULL, user_agent_id = NULL
        WHERE e.created_at >= v_from AND e.created_at < v_cutoff
            AND (e.ip IS NOT NULL OR e.user_agent_id IS NOT NULL);
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_result := v_result || jsonb_build_object('events_cleared', v_rows);

        WITH old AS (
            DELETE FROM tally.rate_limit_rejections AS r
            WHERE r.window_start >= v_from AND r.window_start < v_cutoff
                AND r.key IS DISTINCT FROM tally.rejection_prefix(r.key)
            RETURNING r.window_start, r.key, r.kind, r.rejected
        )
        INSERT INTO tally.rate_limit_rejections AS r (window_start, key, kind, rejected)
        SELECT o.window_start, tally.rejection_prefix(o.key), o.kind, sum(o.rejected)
        FROM old AS o
        GROUP BY 1, 2, 3
        ON CONFLICT (window_start, key, kind) DO UPDATE SET rejected = r.rejected + excluded.rejected;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_result := v_result || jsonb_build_object('rejection_keys_truncated', v_rows);

        UPDATE tally.pii_state AS p SET cleared_below = v_cutoff;
    END IF;

    -- Every event of a day before the cutoff's has no user agent any more.
    -- A row a call is marking used is skipped, as housekeeping skips rows ingestion holds.
    DELETE FROM tally.user_agents AS u
    WHERE u.ctid = ANY(ARRAY(
        SELECT o.ctid FROM tally.user_agents AS o WHERE o.last_used < (v_cutoff AT TIME ZONE 'UTC')::date
        FOR UPDATE SKIP LOCKED
    ));
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_result := v_result || jsonb_build_object('user_agents_unreferenced', v_rows);

    DELETE FROM tally.visitor_salts AS s WHERE s.day < v_today - 1;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_result || jsonb_build_object('visitor_salts', v_rows);
END
$$;

COMMENT ON FUNCTION tally.clear_personal_data() IS
'Housekeeping''s privacy step: clears addresses and user agents past pii_retention, truncates old rejection keys, '
'deletes unreferenced user agents and expired salts.';
