-- Settings: one row of scalar bounds and one row per event kind. Applications cannot change either.

CREATE TABLE tally.settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    user_agent_max integer NOT NULL DEFAULT 512 CHECK (user_agent_max BETWEEN 0 AND 8192),
    referrer_max integer NOT NULL DEFAULT 1024 CHECK (referrer_max BETWEEN 0 AND 8192),
    identifier_max integer NOT NULL DEFAULT 256 CHECK (identifier_max BETWEEN 1 AND 8192),
    metadata_max_bytes integer NOT NULL DEFAULT 4096 CHECK (metadata_max_bytes BETWEEN 0 AND 1048576),
    event_id_ttl interval NOT NULL DEFAULT '1 day',
    clock_override boolean NOT NULL DEFAULT false,
    trending_half_life interval NOT NULL DEFAULT '3 days',
    event_retention interval DEFAULT '90 days',
    run_retention interval NOT NULL DEFAULT '30 days',
    partitions_ahead integer NOT NULL DEFAULT 3 CHECK (partitions_ahead BETWEEN 1 AND 24),
    cron_conninfo text
);

INSERT INTO tally.settings DEFAULT VALUES;

COMMENT ON TABLE tally.settings IS
'pgtally settings: exactly one row. Change with UPDATE as the owner or a superuser.';
COMMENT ON COLUMN tally.settings.user_agent_max IS
'User agents are cut to this many characters (after control characters are removed).';
COMMENT ON COLUMN tally.settings.referrer_max IS
'Referrers are cut to this many characters (after control characters are removed).';
COMMENT ON COLUMN tally.settings.identifier_max IS
'target_id, user_id and session_id longer than this are refused with SQLSTATE 22001.';
COMMENT ON COLUMN tally.settings.metadata_max_bytes IS
'metadata larger than this (as jsonb text) is replaced by a marker object; the event is still logged.';
COMMENT ON COLUMN tally.settings.event_id_ttl IS
'How long an event_id is remembered for duplicate detection of retried calls.';
COMMENT ON COLUMN tally.settings.clock_override IS
'When true, the session setting tally.clock (a timestamptz) replaces now() for ingestion. For demos and tests only.';
COMMENT ON COLUMN tally.settings.trending_half_life IS
'Trending scores halve for every half-life of age of the day the activity happened.';
COMMENT ON COLUMN tally.settings.event_retention IS
'Raw event partitions wholly older than this (and rolled up) are dropped by housekeeping; NULL keeps them.';
COMMENT ON COLUMN tally.settings.run_retention IS
'tally.rollup_runs rows and pg_cron run details of tally jobs older than this are pruned by housekeeping.';
COMMENT ON COLUMN tally.settings.cron_conninfo IS
'When pg_cron lives in another database: libpq conninfo dblink uses to reach it. NULL: this server''s '
'socket, the cron.database_name database and the current user (enough for a superuser under trust or peer).';
COMMENT ON COLUMN tally.settings.partitions_ahead IS
'Housekeeping keeps this many monthly event partitions created ahead of the current month.';

CREATE TABLE tally.kinds (
    kind text PRIMARY KEY,
    counter_column name CHECK (counter_column IN ('views', 'copies', 'downloads', 'uses')),
    debounce interval NOT NULL DEFAULT '0' CHECK (debounce >= '0'),
    rate_window interval NOT NULL DEFAULT '1 minute' CHECK (rate_window > '0'),
    ip_limit integer CHECK (ip_limit > 0),
    user_limit integer CHECK (user_limit > 0),
    weight numeric NOT NULL DEFAULT 1 CHECK (weight >= 0)
);

INSERT INTO tally.kinds (kind, counter_column, debounce, ip_limit, user_limit, weight) VALUES
('view', 'views', '30 minutes', 300, 300, 1),
('copy', 'copies', '0', 30, 30, 3),
('download', 'downloads', '0', 20, 20, 3),
('template_use', 'uses', '0', 30, 30, 5),
('builder_export', 'uses', '0', 30, 30, 5);

COMMENT ON TABLE tally.kinds IS
'The event kinds log_event accepts (any other kind is SQLSTATE 22023) and their per-kind rules.';
COMMENT ON COLUMN tally.kinds.counter_column IS
'Host-table counter the rollup adds this kind to (builder_export counts as a use); NULL: daily counts only.';
COMMENT ON COLUMN tally.kinds.debounce IS
'A viewer counts once per target per this interval; 0 disables debouncing for the kind.';
COMMENT ON COLUMN tally.kinds.rate_window IS
'Length of the fixed rate-limit window (aligned to 2000-01-01 UTC).';
COMMENT ON COLUMN tally.kinds.ip_limit IS
'Calls allowed per IP address per window; NULL: no limit. Further calls return rate_limited.';
COMMENT ON COLUMN tally.kinds.user_limit IS
'Calls allowed per user_id per window; NULL: no limit. Further calls return rate_limited.';
COMMENT ON COLUMN tally.kinds.weight IS 'Weight of one event of this kind in trending scores.';
