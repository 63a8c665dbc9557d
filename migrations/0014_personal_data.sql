-- Personal data kept only as long as it is needed (README "Personal data").
--
-- Visitor keys: the debounce identity of an event is an HMAC-SHA256 of the identity under a secret
-- salt of its UTC day, not an unkeyed md5 (the IPv4 space is small enough to reverse that). Salts
-- are deleted after two days, after which no stored key can be linked to an address or a user.
-- Raw addresses and user agents are needed only inside the abuse window (settings.pii_retention):
-- housekeeping clears them in older events and truncates older rate-limit rejection keys.

ALTER TABLE tally.settings
ADD COLUMN pii_retention interval NOT NULL DEFAULT '7 days' CHECK (pii_retention > '0');

COMMENT ON COLUMN tally.settings.pii_retention IS
'The abuse window: housekeeping clears ip and user agent in events older than this, truncates older '
'rate-limit rejection keys to an address prefix, and deletes user agents no event then references.';

-- The salt is stored as HMAC's two padded keys (key xor ipad, key xor opad; RFC 2104), so that a
-- visitor key is two built-in sha256() calls and needs no extension.
CREATE TABLE tally.visitor_salts (
    day date PRIMARY KEY,
    inner_pad bytea NOT NULL CHECK (octet_length(inner_pad) = 64),
    outer_pad bytea NOT NULL CHECK (octet_length(outer_pad) = 64)
);

COMMENT ON TABLE tally.visitor_salts IS
'Secret HMAC key of each UTC day''s visitor keys, as its inner and outer pads. Readable by tally_owner only; '
'created on first use, deleted by housekeeping once older than yesterday.';
COMMENT ON COLUMN tally.visitor_salts.day IS 'The UTC day whose visitor keys this salt makes.';
COMMENT ON COLUMN tally.visitor_salts.inner_pad IS 'The 64-byte block key xor 0x36 (HMAC ipad). Secret.';
COMMENT ON COLUMN tally.visitor_salts.outer_pad IS 'The 64-byte block key xor 0x5c (HMAC opad). Secret.';

-- Where the clearing of personal data got to, so that each housekeeping run reads only the events
-- and rejections that crossed pii_retention since the previous one.
CREATE TABLE tally.pii_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cleared_below timestamptz NOT NULL
);

INSERT INTO tally.pii_state (cleared_below) VALUES ('-infinity');
ANALYZE tally.pii_state;

COMMENT ON TABLE tally.pii_state IS
'Events and rate-limit rejections older than cleared_below hold no raw address or user agent any more.';
COMMENT ON COLUMN tally.pii_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN tally.pii_state.cleared_below IS
'Housekeeping has cleared personal data from rows created before this instant.';

-- The previous day's key of the same identity, passed by log_event to the debounce check in the
-- first minutes of a UTC day (a window that spans midnight), and never stored: the admit_event
-- trigger sets it to NULL. A null column costs a bit of the null bitmap, which events rows have.
ALTER TABLE tally.events ADD COLUMN previous_visitor uuid;

COMMENT ON COLUMN tally.events.previous_visitor IS
'Transient: the identity''s key under the previous day''s salt, for a debounce window across midnight. '
'Always NULL once stored.';
COMMENT ON COLUMN tally.events.visitor IS
'Visitor key: HMAC-SHA256 of user_id, else session_id, else address bucket + user agent, under the salt of '
'the event''s UTC day (first 16 bytes). Unlinkable once the salt is deleted (after two days). NULL: no identity.';
COMMENT ON COLUMN tally.events.ip IS
'Personal data: the caller''s address (normalised). Cleared by housekeeping after settings.pii_retention.';
COMMENT ON COLUMN tally.events.user_agent_id IS
'Personal data: tally.user_agents.id of the cleaned user agent. Cleared by housekeeping after '
'settings.pii_retention.';
COMMENT ON COLUMN tally.events.user_id IS
'Personal data: the application''s user id, if given. Removed by tally.forget_user().';

-- Unique viewers. A kind with a debounce window keeps one slot per (target, kind, visitor key) in
-- tally.debounce, and a visitor key changes with the day's salt: so the claim that creates a slot is
-- the visitor's first event of that target and kind that UTC day (housekeeping keeps the day's slots
-- until the day is over). The trigger marks that event; the rollup counts the marks. No set of
-- visitors to keep and no grouping by visitor (measured: a set of the day's visits, kept by the
-- rollup, cost it 2-4 us per view event: 1M events 170k/s instead of ~900k/s).
ALTER TABLE tally.events ADD COLUMN first_visit boolean;

COMMENT ON COLUMN tally.events.first_visit IS
'true when the event created its visitor''s debounce slot for this target and kind today (its first that UTC day); '
'NULL otherwise. Set by the admit_event trigger.';

ALTER TABLE tally.daily_counts ADD COLUMN viewers bigint NOT NULL DEFAULT 0;

COMMENT ON COLUMN tally.daily_counts.viewers IS
'For kinds with a debounce window: distinct visitors among the day''s events (exact; events without any '
'identity are not counted). 0 for other kinds.';

ALTER TABLE tally.trending_scores ADD COLUMN viewers bigint NOT NULL DEFAULT 0;

COMMENT ON COLUMN tally.trending_scores.viewers IS
'Sum over the window''s days of the daily viewers of kinds counted as views (visitor-days: keys rotate daily, '
'so a visitor returning on another day counts again).';

-- Every column that holds personal data says so first (docs/sql-api.md marks them).
COMMENT ON COLUMN tally.events.referrer IS
'Personal data (a URL may carry identifiers): the cleaned referrer. Removed by tally.forget_user().';
COMMENT ON COLUMN tally.events.metadata IS
'Personal data (whatever the application put there): the caller''s JSON object. Removed by tally.forget_user().';
COMMENT ON COLUMN tally.user_agents.user_agent IS
'Personal data: the cleaned user agent. Deleted once no event references it (settings.pii_retention, '
'user_agent_ttl).';
COMMENT ON COLUMN tally.rate_limit_rejections.key IS
'Personal data inside the abuse window: ip:ADDRESS (or IPv6 prefix), ip:unparsable or user:ID; after '
'settings.pii_retention only an address prefix (IPv4 /24, IPv6 /48) or user:*.';
