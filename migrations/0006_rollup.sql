-- Rollup bookkeeping and the daily aggregate that trending reads.

CREATE TABLE tally.rollup_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_up_below bigint NOT NULL DEFAULT 0,
    last_run_at timestamptz
);

INSERT INTO tally.rollup_state DEFAULT VALUES;

COMMENT ON TABLE tally.rollup_state IS
'Every event whose txid is below rolled_up_below has been counted, and no other.';

CREATE TABLE tally.rollup_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('ok', 'skipped', 'failed')),
    events bigint NOT NULL DEFAULT 0,
    entities integer NOT NULL DEFAULT 0,
    from_txid bigint,
    to_txid bigint,
    error text
);

CREATE INDEX rollup_runs_started_at ON tally.rollup_runs (started_at);

COMMENT ON TABLE tally.rollup_runs IS
'One row per tally.rollup() call: ok, skipped (another rollup held the lock) or failed (with the error).';

CREATE TABLE tally.daily_counts (
    day date NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    kind text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (day, target_type, target_id, kind)
);

COMMENT ON TABLE tally.daily_counts IS
'Events per UTC day, target and kind, written by tally.rollup(). The source of trending and of rebuild_counters().';
