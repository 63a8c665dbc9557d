-- tally:always (re-run on every migrate, so a function added anywhere is never left granted to PUBLIC)
-- Deny by default, then grant the public surface. Functions are EXECUTE-able by PUBLIC unless
-- revoked, and SECURITY DEFINER ones run with tally_owner's rights, so every routine is revoked
-- first: PUBLIC can execute nothing in schema tally.
REVOKE ALL ON SCHEMA tally FROM public;
REVOKE ALL ON ALL TABLES IN SCHEMA tally FROM public, tally_app, tally_admin;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA tally FROM public, tally_app, tally_admin;
REVOKE ALL ON ALL ROUTINES IN SCHEMA tally FROM public, tally_app, tally_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE tally_owner IN SCHEMA tally REVOKE EXECUTE ON ROUTINES FROM public;

GRANT USAGE ON SCHEMA tally TO tally_app, tally_admin;

-- Applications: log events, read trending and counters. Never raw events (IPs, user agents).
GRANT EXECUTE ON FUNCTION tally.log_event(text, text, text, text, text, text, text, text, jsonb, uuid)
TO tally_app;
GRANT EXECUTE ON FUNCTION tally.trending(text, text, integer) TO tally_app;
GRANT SELECT ON tally.counters_live, tally.snippets, tally.templates, tally.documents TO tally_app;

-- Operators: tally_admin is a member of tally_app, plus monitoring and the jobs' work.
GRANT SELECT ON tally.rate_limit_log, tally.discard_log, tally.job_status, tally.rollup_runs TO tally_admin;
GRANT EXECUTE ON FUNCTION tally.high_volume_ips(interval, integer) TO tally_admin;
GRANT EXECUTE ON FUNCTION tally.rollup() TO tally_admin;
GRANT EXECUTE ON FUNCTION tally.refresh_trending() TO tally_admin;
GRANT EXECUTE ON FUNCTION tally.housekeeping() TO tally_admin;
-- job_status calls these as its reader; they reveal only what pg_cron lets that role see. Where
-- pg_cron lives in another database, the jobs are visible to roles that may read cron_conninfo.
GRANT EXECUTE ON FUNCTION tally.cron_location() TO tally_admin;
GRANT EXECUTE ON FUNCTION tally.cron_jobs() TO tally_admin;
