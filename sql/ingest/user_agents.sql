CREATE OR REPLACE FUNCTION tally.remember_user_agent(p_user_agent text, p_day date)
RETURNS TABLE (id integer, is_bot boolean)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The id and bot verdict of a cleaned user agent, adding it when new and marking it used on p_day.
 * log_event calls this only for a call it is about to store, with a user agent it has not seen
 * today, so the regexes of tally.bot_patterns run once per new user agent and hostile calls that are
 * refused earlier (duplicates, bots, rate limits) add no rows. Marking a row used skips a row that
 * another transaction is marking (it is being set to the same day): no wait, no lock cycle.
 */
#variable_conflict use_column
DECLARE
    v_hash uuid := md5(p_user_agent)::uuid;
BEGIN
    RETURN QUERY
    INSERT INTO tally.user_agents AS u (hash, user_agent, is_bot, last_used)
    VALUES (
        v_hash,
        p_user_agent,
        EXISTS (SELECT 1 FROM tally.bot_patterns AS b WHERE p_user_agent ~* b.pattern),
        p_day
    )
    ON CONFLICT (hash) DO NOTHING
    RETURNING u.id, u.is_bot;
    IF FOUND THEN
        RETURN;
    END IF;
    UPDATE tally.user_agents AS u SET last_used = p_day
    FROM (
        SELECT x.id FROM tally.user_agents AS x
        WHERE x.hash = v_hash AND x.last_used < p_day
        FOR UPDATE SKIP LOCKED
    ) AS stale
    WHERE u.id = stale.id;
    RETURN QUERY SELECT u.id, u.is_bot FROM tally.user_agents AS u WHERE u.hash = v_hash;
END
$$;

COMMENT ON FUNCTION tally.remember_user_agent(text, date) IS
'Id and bot verdict of a user agent, recorded when first seen and marked used on the given day.';

CREATE OR REPLACE FUNCTION tally.reclassify_user_agents()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * AFTER any change to tally.bot_patterns: recomputes the bot verdict of every known user agent, so a
 * new pattern applies to user agents seen before it was added.
 */
BEGIN
    UPDATE tally.user_agents AS u
    SET is_bot = v.is_bot
    FROM (
        SELECT
            a.id,
            EXISTS (SELECT 1 FROM tally.bot_patterns AS b WHERE a.user_agent ~* b.pattern) AS is_bot
        FROM tally.user_agents AS a
    ) AS v
    WHERE u.id = v.id AND u.is_bot IS DISTINCT FROM v.is_bot;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION tally.reclassify_user_agents() IS
'Trigger on tally.bot_patterns: re-applies the patterns to every known user agent.';

CREATE OR REPLACE TRIGGER reclassify_user_agents
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tally.bot_patterns
FOR EACH STATEMENT EXECUTE FUNCTION tally.reclassify_user_agents();

CREATE OR REPLACE VIEW tally.event_log AS
SELECT
    e.id,
    e.created_at,
    e.target_type,
    e.target_id,
    e.kind,
    e.user_id,
    e.visitor,
    e.ip,
    u.user_agent,
    e.referrer,
    e.metadata
FROM tally.events AS e
LEFT JOIN tally.user_agents AS u ON e.user_agent_id = u.id;

COMMENT ON VIEW tally.event_log IS
'Raw events with their user agent text. Personal data: the owner''s and superusers'' only.';
COMMENT ON COLUMN tally.event_log.user_id IS 'Personal data: see tally.events.user_id.';
COMMENT ON COLUMN tally.event_log.ip IS 'Personal data: see tally.events.ip.';
COMMENT ON COLUMN tally.event_log.user_agent IS 'Personal data: see tally.user_agents.user_agent.';
COMMENT ON COLUMN tally.event_log.referrer IS 'Personal data: see tally.events.referrer.';
COMMENT ON COLUMN tally.event_log.metadata IS 'Personal data: see tally.events.metadata.';
COMMENT ON COLUMN tally.event_log.id IS 'See tally.events.id.';
COMMENT ON COLUMN tally.event_log.created_at IS 'See tally.events.created_at.';
COMMENT ON COLUMN tally.event_log.target_type IS 'See tally.events.target_type.';
COMMENT ON COLUMN tally.event_log.target_id IS 'See tally.events.target_id.';
COMMENT ON COLUMN tally.event_log.kind IS 'See tally.events.kind.';
COMMENT ON COLUMN tally.event_log.visitor IS 'See tally.events.visitor.';
