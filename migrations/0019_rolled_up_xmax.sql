-- The bound log_event checks its transaction against, so that a database restored into a cluster
-- whose transaction ids are behind its own logs nothing that the rollup would never count
-- (tally.refuse_restored). On the settings row because every call reads that row already: the same
-- check against tally.rollup_state, one more relation in log_event's first query, cost about a tenth
-- of its throughput at 8 clients.
ALTER TABLE tally.settings ADD COLUMN rolled_up_xmax bigint NOT NULL DEFAULT 0;

UPDATE tally.settings
SET rolled_up_xmax = (SELECT pg_snapshot_xmax(r.snapshot)::text::bigint FROM tally.rollup_state AS r);

COMMENT ON COLUMN tally.settings.rolled_up_xmax IS
'Not a setting: the xmax of tally.rollup_state.snapshot, kept with it by tally.rollup() and tally.after_restore(). '
'A transaction below it that the snapshot counts as rolled up logs nothing (tally.refuse_restored).';

ANALYZE tally.settings;
