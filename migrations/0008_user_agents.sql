-- User agents move to a lookup table: a browser's user agent is ~120 characters and a handful of them
-- account for most traffic, so each event now stores a 4-byte id instead of the text. The bot verdict
-- is kept with the user agent, so a known user agent is classified without running any regex.

CREATE TABLE tally.user_agents (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash uuid NOT NULL UNIQUE,
    user_agent text NOT NULL,
    is_bot boolean NOT NULL,
    last_used date NOT NULL
);

COMMENT ON TABLE tally.user_agents IS
'Distinct cleaned user agents (looked up by md5 hash) with their bot verdict. last_used is updated at most '
'once a day; housekeeping deletes rows unused for longer than settings.event_retention.';

INSERT INTO tally.user_agents (hash, user_agent, is_bot, last_used)
SELECT
    md5(e.user_agent)::uuid AS hash,
    e.user_agent,
    (
        SELECT coalesce(bool_or(e.user_agent ~* b.pattern), false)
        FROM tally.bot_patterns AS b
    ) AS is_bot,
    max(e.created_at)::date AS last_used
FROM tally.events AS e
WHERE e.user_agent IS NOT null
GROUP BY e.user_agent;

ALTER TABLE tally.events ADD COLUMN user_agent_id integer;

UPDATE tally.events AS e SET user_agent_id = u.id
FROM tally.user_agents AS u
WHERE u.hash = md5(e.user_agent)::uuid;

ALTER TABLE tally.events DROP COLUMN user_agent;

COMMENT ON COLUMN tally.events.user_agent_id IS 'tally.user_agents.id of the cleaned user agent, if any.';
