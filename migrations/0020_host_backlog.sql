-- Counters the rollup could not add to a host row: another transaction held the row locked (an edit
-- left open, a SELECT ... FOR UPDATE never committed), or the host table's own code failed (a trigger
-- that raises). tally_host.add_counters() skips a held row instead of waiting for it, and
-- tally.add_host_counters() defers a type whose table fails, so that neither stalls every counter;
-- the rollup keeps the rows' shares here, and each later rollup adds them with its own batch until
-- they go through. One row per target: a second deferral adds to the first.
CREATE TABLE tally.host_backlog (
    target_type text NOT NULL,
    target_id text NOT NULL,
    views bigint NOT NULL DEFAULT 0,
    copies bigint NOT NULL DEFAULT 0,
    downloads bigint NOT NULL DEFAULT 0,
    uses bigint NOT NULL DEFAULT 0,
    since timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL,
    PRIMARY KEY (target_type, target_id)
);

COMMENT ON TABLE tally.host_backlog IS
'Rolled-up counts not yet in their host row (another transaction held it, or the host table''s code failed); a '
'later rollup adds them. tally.counters_live includes them.';
COMMENT ON COLUMN tally.host_backlog.target_type IS 'Registered target type of the host row.';
COMMENT ON COLUMN tally.host_backlog.target_id IS 'The host row''s key, as canonical text.';
COMMENT ON COLUMN tally.host_backlog.views IS 'Views rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.copies IS 'Copies rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.downloads IS 'Downloads rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.uses IS 'Uses rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.since IS 'When the rollup first deferred the row.';
COMMENT ON COLUMN tally.host_backlog.reason IS
'Why, at the last rollup: the row was locked by another transaction, or the error the host table''s code raised.';
