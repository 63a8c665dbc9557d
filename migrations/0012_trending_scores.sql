-- Trending scores kept by the rollup instead of materialized views refreshed from every daily row in
-- the window (42 s at 100k entities). Forward decay (Cormode et al., ICDE 2009): a score is measured
-- forward from a landmark day (epoch), sum(count * weight * 2^((day - epoch) / half_life)), which
-- differs from the backward-decayed score of a given day by one factor shared by all targets. So it
-- ranks the same, converts exactly, and the rollup can add each batch's contribution; once per UTC
-- day the day leaving each window is subtracted (sql/trending/advance_trending.sql).

CREATE TABLE tally.trending_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch date NOT NULL,
    day date NOT NULL,
    half_life interval NOT NULL,
    weights text NOT NULL
);

COMMENT ON TABLE tally.trending_state IS
'What tally.trending_scores hold: forward-decayed from epoch, windows ending on day, computed with this '
'half_life and these kind weights. Any change makes the next rollup rebuild the scores.';

CREATE TABLE tally.trending_scores (
    period smallint NOT NULL CHECK (period IN (7, 30)),
    target_type text NOT NULL,
    target_id text NOT NULL,
    score double precision NOT NULL,
    rank double precision NOT NULL,
    events bigint NOT NULL,
    last_day date NOT NULL,
    PRIMARY KEY (period, target_type, target_id)
) WITH (fillfactor = 80);

-- No index on rank here: every rollup changes the scores of the batch's targets, and an indexed rank
-- would make each of those updates non-HOT (measured: 3.5x the cost per row). Reads use trending_top.

COMMENT ON TABLE tally.trending_scores IS
'Trending score per period (7 or 30 UTC days, today included) and target, kept by tally.rollup().';
COMMENT ON COLUMN tally.trending_scores.score IS
'sum(count * kind weight * 2 ^ ((day - trending_state.epoch) / half_life)) over the window''s days.';
COMMENT ON COLUMN tally.trending_scores.rank IS
'score rounded to 12 significant digits: equal histories tie exactly, whatever order they were added in.';
COMMENT ON COLUMN tally.trending_scores.events IS 'Events of weighted kinds in the window.';
COMMENT ON COLUMN tally.trending_scores.last_day IS
'The latest day that contributed: the row is deleted once that day leaves the window (no float residue).';

-- The best tally.top_size() rows per period and type, in rank order: what trending() reads. The rollup
-- adds the batch's rows that reach it (scores only grow within a batch); the daily step, whose
-- subtractions can reorder anything, rebuilds it.
CREATE TABLE tally.trending_top (
    period smallint NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    rank double precision NOT NULL,
    PRIMARY KEY (period, target_type, target_id)
);

CREATE INDEX trending_top_rank ON tally.trending_top (period, target_type, rank DESC, target_id);

COMMENT ON TABLE tally.trending_top IS
'The best tally.top_size() trending_scores rows per period and type (rank desc, target_id): trending() reads a '
'range of its index.';

-- Replaced by views over the scores (sql/targets/build_target_views.sql).
DROP MATERIALIZED VIEW IF EXISTS tally.trending_7d;
DROP MATERIALIZED VIEW IF EXISTS tally.trending_30d;
