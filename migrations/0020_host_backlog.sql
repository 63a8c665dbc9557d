-- Counters the rollup could not add to a host row because another transaction held that row locked
-- (an edit left open, a SELECT ... FOR UPDATE never committed). tally_host.add_counters() skips such
-- a row instead of waiting for it, so that one open transaction cannot stall every counter; the
-- rollup keeps the row's share here, and each later rollup adds it with its own batch until the row
-- is free. One row per target: a second deferral adds to the first.
CREATE TABLE tally.host_backlog (
    target_type text NOT NULL,
    target_id text NOT NULL,
    views bigint NOT NULL DEFAULT 0,
    copies bigint NOT NULL DEFAULT 0,
    downloads bigint NOT NULL DEFAULT 0,
    uses bigint NOT NULL DEFAULT 0,
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_type, target_id)
);

COMMENT ON TABLE tally.host_backlog IS
'Rolled-up counts not yet in their host row, which another transaction held locked at the rollup; the next rollup '
'that finds the row free adds them. tally.counters_live includes them.';
COMMENT ON COLUMN tally.host_backlog.target_type IS 'Registered target type of the host row.';
COMMENT ON COLUMN tally.host_backlog.target_id IS 'The host row''s key, as canonical text.';
COMMENT ON COLUMN tally.host_backlog.views IS 'Views rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.copies IS 'Copies rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.downloads IS 'Downloads rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.uses IS 'Uses rolled up but not yet added to the row.';
COMMENT ON COLUMN tally.host_backlog.since IS 'When the rollup first found the row locked.';
