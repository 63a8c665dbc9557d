CREATE OR REPLACE FUNCTION tally.store_user_agents(items tally.ingest_item[], state tally.ingest_state[], day date)
RETURNS tally.ingest_state[]
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 3 of log_events: what remember_user_agent does for one call, for the batch's elements still
 * going: new user agents are added (their bot verdict stored, once), known ones not yet used today are
 * marked used (skipping rows another transaction is marking), and each element gets its agent's id.
 * Nothing when every user agent was already seen today: the common case costs no statement.
 */
#variable_conflict use_column
DECLARE
    v_state tally.ingest_state [] := store_user_agents.state;
    v_agents text [];
    v_hashes uuid [];
    v_ids integer [];
BEGIN
    SELECT array_agg(DISTINCT r.user_agent) INTO v_agents
    FROM ROWS FROM (unnest(store_user_agents.items), unnest(store_user_agents.state)) AS r
    WHERE r.error IS NULL AND r.outcome IS NULL AND r.user_agent IS NOT NULL
        AND (r.agent_id IS NULL OR r.agent_used < store_user_agents.day);
    IF v_agents IS NULL THEN
        RETURN v_state;
    END IF;

    WITH wanted AS (
        SELECT a.user_agent, md5(a.user_agent)::uuid AS hash FROM unnest(v_agents) AS a (user_agent)
    ),
    added AS (
        INSERT INTO tally.user_agents AS u (hash, user_agent, is_bot, last_used)
        SELECT
            w.hash,
            w.user_agent,
            EXISTS (SELECT 1 FROM tally.bot_patterns AS b WHERE w.user_agent ~* b.pattern),
            store_user_agents.day
        FROM wanted AS w
        ORDER BY w.hash
        ON CONFLICT (hash) DO NOTHING
        RETURNING u.hash, u.id
    ),
    marked AS (
        UPDATE tally.user_agents AS u SET last_used = store_user_agents.day
        FROM (
            SELECT x.id FROM tally.user_agents AS x
            WHERE x.hash IN (SELECT w.hash FROM wanted AS w) AND x.last_used < store_user_agents.day
            ORDER BY x.id
            FOR UPDATE SKIP LOCKED
        ) AS stale
        WHERE u.id = stale.id
        RETURNING u.hash, u.id
    )
    SELECT array_agg(w.hash), array_agg(coalesce(a.id, m.id))
    INTO v_hashes, v_ids
    FROM wanted AS w
    LEFT JOIN added AS a ON a.hash = w.hash
    LEFT JOIN marked AS m ON m.hash = w.hash;
    -- Known, or added by a transaction that committed while this one waited on it: a new snapshot
    -- sees it (the statement above could not).
    IF array_position(v_ids, NULL) IS NOT NULL THEN
        SELECT array_agg(n.hash), array_agg(coalesce(n.id, u.id))
        INTO v_hashes, v_ids
        FROM unnest(v_hashes, v_ids) AS n (hash, id)
        LEFT JOIN tally.user_agents AS u ON n.id IS NULL AND u.hash = n.hash;
    END IF;

    SELECT array_agg(
        row(
            r.outcome, r.reach, r.ip_over, r.user_over, r.canonical_id, coalesce(n.id, r.stored_agent),
            r.stored_visitor, r.first_visit
        )::tally.ingest_state
        ORDER BY r.ord
    )
    INTO v_state
    FROM ROWS FROM (unnest(store_user_agents.items), unnest(store_user_agents.state)) AS r
    LEFT JOIN unnest(v_hashes, v_ids) AS n (hash, id)
        ON r.error IS NULL AND r.outcome IS NULL AND n.hash = md5(r.user_agent)::uuid;
    RETURN v_state;
END
$$;

COMMENT ON FUNCTION tally.store_user_agents(tally.ingest_item[], tally.ingest_state[], date) IS
'Step 3 of log_events: records the user agents of the elements still going and sets their ids.';
