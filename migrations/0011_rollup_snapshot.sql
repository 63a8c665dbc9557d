-- Rollup batches by snapshot difference (PgQ's method) instead of "txid below the oldest running
-- transaction": an event is counted by the first rollup whose snapshot sees its transaction as
-- committed. So an open transaction delays only its own events, not everyone's, and one that
-- commits late is still counted exactly once. rolled_up_below stays as the stored snapshot's xmin
-- (every event of a lower txid has been counted), which is what the BRIN range scans start from.
ALTER TABLE tally.rollup_state ADD COLUMN snapshot pg_snapshot;

-- The old bound as a snapshot: transactions below it are visible (counted), none at or above it.
-- 3 is the first normal transaction id; lower ones never insert events.
UPDATE tally.rollup_state
SET snapshot = format('%1$s:%1$s:', greatest(rolled_up_below, 3))::pg_snapshot;

ALTER TABLE tally.rollup_state ALTER COLUMN snapshot SET NOT NULL;

COMMENT ON TABLE tally.rollup_state IS
'What the rollups have counted: exactly the events whose transaction is visible in snapshot.';
COMMENT ON COLUMN tally.rollup_state.snapshot IS
'The snapshot of the last successful rollup. An event has been counted if and only if its txid is visible in it.';
COMMENT ON COLUMN tally.rollup_state.rolled_up_below IS
'The xmin of snapshot: every event whose txid is below it has been counted (where the rollup''s range scan starts).';
