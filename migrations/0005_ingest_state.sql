-- Side state of ingestion. Debounce and rate-limit state are UNLOGGED: they cost no WAL on the hot
-- path, and a crash loses only that state (views inside a debounce window may count once more, and
-- rate-limit windows restart), never an event.

CREATE UNLOGGED TABLE tally.debounce (
    key uuid PRIMARY KEY,
    last_at timestamptz NOT NULL
);

COMMENT ON TABLE tally.debounce IS
'Last admitted time per (target, kind, visitor) hash. Pruned by housekeeping once past every window.';

CREATE UNLOGGED TABLE tally.rate_limit_state (
    key uuid NOT NULL,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (key, window_start)
);

COMMENT ON TABLE tally.rate_limit_state IS
'Calls per (ip or user, kind) hash per fixed window. Pruned by housekeeping once the window has passed.';

CREATE TABLE tally.rate_limit_rejections (
    window_start timestamptz NOT NULL,
    key text NOT NULL,
    kind text NOT NULL,
    rejected bigint NOT NULL,
    PRIMARY KEY (window_start, key, kind)
);

COMMENT ON TABLE tally.rate_limit_rejections IS
'Rejected calls per key (ip:ADDRESS or user:ID), kind and window. Kept for run_retention.';

-- shard spreads the counter of one (day, kind, reason) over 16 rows so that concurrent sessions do
-- not queue on one row lock until commit (the shard is the backend pid modulo 16).
CREATE TABLE tally.discards (
    day date NOT NULL,
    target_type text NOT NULL,
    kind text NOT NULL,
    reason tally.outcome NOT NULL,
    shard smallint NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (day, target_type, kind, reason, shard)
);

COMMENT ON TABLE tally.discards IS
'Calls that logged nothing, per UTC day, target type, kind and outcome. Sum over shard.';

CREATE TABLE tally.event_ids (
    event_id uuid PRIMARY KEY,
    seen_at timestamptz NOT NULL
);

COMMENT ON TABLE tally.event_ids IS
'event_id values already processed, so a retried call returns duplicate. Kept for settings.event_id_ttl.';

CREATE TABLE tally.bot_patterns (
    pattern text PRIMARY KEY,
    note text
);

COMMENT ON TABLE tally.bot_patterns IS
'Case-insensitive regular expressions; a user agent matching any is discarded as discarded_bot.';

INSERT INTO tally.bot_patterns (pattern, note) VALUES
('bot\y', 'generic: Googlebot, bingbot, DuckDuckBot, ...'),
('crawl', 'generic crawlers'),
('spider', 'generic spiders: Baiduspider, ...'),
('slurp', 'Yahoo! Slurp'),
('facebookexternalhit', 'Facebook link previews'),
('headlesschrome', 'headless Chrome automation'),
('python-requests|python-urllib|aiohttp|httpx', 'Python HTTP clients'),
('^curl/|^wget/|libwww-perl|go-http-client|okhttp|java/', 'command-line and library HTTP clients'),
('lighthouse|pagespeed|gtmetrix|pingdom|uptimerobot', 'monitoring and auditing');
