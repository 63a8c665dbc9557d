-- tally.settings and the other one-row tables are below autovacuum's analyze threshold, so without
-- statistics the planner estimates them from their page count (hundreds of rows) and plans joins
-- against them accordingly. Their statistics never go stale (one row each, forever): take them once.
-- (log_event no longer depends on them for its plan either; see sql/ingest/log_event.sql.)
ANALYZE tally.settings;
ANALYZE tally.kinds;
ANALYZE tally.rollup_state;
ANALYZE tally.target_types;
