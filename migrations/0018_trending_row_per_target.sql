-- One row of trending scores per target, holding both windows, instead of one row per window and
-- target. A rollup's batch raises both windows of each target it touches (today is in both), so this
-- halves the rows every rollup writes, and the daily step updates each target once for both windows.
-- Measured at 100k events on 86k targets: 172k upserts of (period, target) rows took 1.1-1.2 s.
--
-- The rows are rebuilt from tally.daily_counts: emptying trending_state makes the next rollup (or
-- housekeeping, or refresh_trending()) call tally.rebuild_trending(). The trending views depend on
-- the old table; tally.build_target_views() (sql/) makes them again over the new one.
--
-- trending_top also keeps each row's score and viewers, so that trending() reads no score row.

DROP VIEW IF EXISTS tally.trending_7d;
DROP VIEW IF EXISTS tally.trending_30d;
DROP TABLE tally.trending_scores;
DELETE FROM tally.trending_top;
DELETE FROM tally.trending_state;

-- fillfactor 50: a rollup may update every row of a page (a batch over most targets), and each new
-- version then fits on its page (a HOT update: no index entry). At 80, 30 % of such updates were HOT.
CREATE TABLE tally.trending_scores (
    target_type text NOT NULL,
    target_id text NOT NULL,
    score_7d double precision NOT NULL,
    rank_7d double precision NOT NULL,
    events_7d bigint NOT NULL,
    viewers_7d bigint NOT NULL,
    score_30d double precision NOT NULL,
    rank_30d double precision NOT NULL,
    events_30d bigint NOT NULL,
    viewers_30d bigint NOT NULL,
    last_day date NOT NULL,
    PRIMARY KEY (target_type, target_id),
    CHECK (events_7d <= events_30d)
) WITH (fillfactor = 50);

-- Still no index on the ranks: every rollup changes the scores of the batch's targets, and an indexed
-- rank would make each of those updates non-HOT (measured: 3.5x the cost per row). Reads use
-- trending_top.

COMMENT ON TABLE tally.trending_scores IS
'Trending scores of a target for both windows (7 and 30 UTC days, today included), kept by tally.rollup(). '
'A target is in a window when it has events there (events_7d, events_30d > 0).';
COMMENT ON COLUMN tally.trending_scores.target_type IS 'Registered target type.';
COMMENT ON COLUMN tally.trending_scores.target_id IS 'The host row''s key, as canonical text.';
COMMENT ON COLUMN tally.trending_scores.score_7d IS
'sum(count * kind weight * 2 ^ ((day - trending_state.epoch) / half_life)) over the 7-day window''s days; '
'exactly 0 once last_day has left that window.';
COMMENT ON COLUMN tally.trending_scores.rank_7d IS
'score_7d rounded to 12 significant digits: equal histories tie exactly, whatever order they were added in.';
COMMENT ON COLUMN tally.trending_scores.events_7d IS 'Events of weighted kinds in the 7-day window.';
COMMENT ON COLUMN tally.trending_scores.viewers_7d IS
'Sum over the 7-day window''s days of the daily viewers of kinds counted as views (visitor-days: keys rotate '
'daily, so a visitor returning on another day counts again).';
COMMENT ON COLUMN tally.trending_scores.score_30d IS 'As score_7d, over the 30-day window.';
COMMENT ON COLUMN tally.trending_scores.rank_30d IS 'score_30d rounded to 12 significant digits.';
COMMENT ON COLUMN tally.trending_scores.events_30d IS 'Events of weighted kinds in the 30-day window.';
COMMENT ON COLUMN tally.trending_scores.viewers_30d IS 'As viewers_7d, over the 30-day window.';
COMMENT ON COLUMN tally.trending_scores.last_day IS
'The latest day that contributed: a window''s part is zeroed once that day leaves it, and the row deleted once it '
'leaves the 30-day window (no float residue).';
-- trending() reads the top alone (and the host rows): the score and viewers it returns are kept here too.
ALTER TABLE tally.trending_top ADD COLUMN score double precision NOT NULL;
ALTER TABLE tally.trending_top ADD COLUMN viewers bigint NOT NULL;

COMMENT ON COLUMN tally.trending_top.score IS 'trending_scores.score_7d or score_30d of the target, by period (copied).';
COMMENT ON COLUMN tally.trending_top.viewers IS
'trending_scores.viewers_7d or viewers_30d of the target, by period (copied).';
COMMENT ON COLUMN tally.trending_top.rank IS
'trending_scores.rank_7d or rank_30d of the target, by period (copied; the index orders by it).';
