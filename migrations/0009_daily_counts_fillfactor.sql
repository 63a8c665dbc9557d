-- Today's rows of tally.daily_counts are updated by every rollup (288 times a day at the default
-- schedule). Leaving room in each page lets those updates be HOT (no new index entry, no index
-- lookups for the dead versions), which is most of what an upsert into a large daily table costs.
ALTER TABLE tally.daily_counts SET (fillfactor = 70);
