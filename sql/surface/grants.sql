-- tally:always (re-run on every migrate, so a function added anywhere is never left granted to PUBLIC)
-- The grants themselves are in tally.apply_grants() (surface/apply_grants.sql), which the registry's
-- rebuild calls too.
SELECT tally.apply_grants();
