CREATE OR REPLACE FUNCTION tally.apply_grants()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The one place privileges are set: deny by default, then grant the public surface. Run after every
 * migrate (surface/grants.sql) and after every rebuild of the registry's views
 * (tally.build_target_views()), since a view that is dropped and created again has no grants.
 * Functions are EXECUTE-able by PUBLIC unless revoked, and SECURITY DEFINER ones run with their
 * owner's rights, so every routine is revoked first: PUBLIC can execute nothing in tally or tally_host.
 * SECURITY DEFINER so that it runs as tally_owner, who owns what it grants.
 */
BEGIN
    REVOKE ALL ON SCHEMA tally FROM public;
    REVOKE ALL ON SCHEMA tally_host FROM public;
    -- Not from tally_host_access: its grants on host tables are given by their owners, as the default
    -- tables' are by migration 0010, and register_target_type() checks them.
    REVOKE ALL ON ALL TABLES IN SCHEMA tally FROM public, tally_app, tally_admin, tally_job, tally_consumer;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA tally FROM public, tally_app, tally_admin, tally_host_access, tally_job;
    REVOKE ALL ON ALL ROUTINES IN SCHEMA tally FROM public, tally_app, tally_admin, tally_host_access, tally_job,
        tally_consumer;
    REVOKE ALL ON ALL ROUTINES IN SCHEMA tally_host FROM public, tally_app, tally_admin, tally_job;
    ALTER DEFAULT PRIVILEGES FOR ROLE tally_owner IN SCHEMA tally REVOKE EXECUTE ON ROUTINES FROM public;

    GRANT USAGE ON SCHEMA tally TO tally_app, tally_admin, tally_job;

    -- Applications: log events, read trending and counters. Never raw events (IPs, user agents).
    -- counters_live reads host rows through tally_host.targets(), which its reader must be able to
    -- call (the function, not the schema: only tally_owner can name it).
    GRANT EXECUTE ON FUNCTION tally.log_event(text, text, text, text, text, text, text, text, jsonb, uuid)
    TO tally_app;
    GRANT EXECUTE ON FUNCTION tally.log_events(jsonb) TO tally_app;
    GRANT EXECUTE ON FUNCTION tally.trending(text, text, integer) TO tally_app;
    GRANT EXECUTE ON FUNCTION tally.live_counters(text, text[]) TO tally_app;
    GRANT SELECT ON tally.counters_live, tally.snippets, tally.templates, tally.documents TO tally_app;
    -- counters_live and job_status call it; a pure function of its arguments, inlined when granted.
    GRANT EXECUTE ON FUNCTION tally.counted(bigint, pg_snapshot) TO tally_app, tally_admin;
    IF to_regprocedure('tally_host.targets(text)') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION tally_host.targets(text) TO tally_app;
    END IF;

    -- Operators: tally_admin is a member of tally_app, plus monitoring and the jobs' work.
    GRANT SELECT ON tally.rate_limit_log, tally.discard_log, tally.job_status, tally.rollup_runs TO tally_admin;
    GRANT SELECT ON tally.trending_7d, tally.trending_30d TO tally_admin;
    -- The trending views call it; a pure function of its arguments, inlined when granted.
    GRANT EXECUTE ON FUNCTION tally.growth(date, date, interval) TO tally_admin;
    GRANT EXECUTE ON FUNCTION tally.high_volume_ips(interval, integer) TO tally_admin;
    GRANT EXECUTE ON FUNCTION tally.rollup() TO tally_admin;
    GRANT EXECUTE ON FUNCTION tally.refresh_trending(), tally.rebuild_trending() TO tally_admin;
    GRANT EXECUTE ON FUNCTION tally.housekeeping() TO tally_admin;
    -- Once, after restoring the database into another cluster (it rewrites the restored events' txids).
    GRANT EXECUTE ON FUNCTION tally.after_restore() TO tally_admin;
    -- Erasure on request; never for applications (it rewrites raw events).
    GRANT EXECUTE ON FUNCTION tally.forget_user(text) TO tally_admin;
    -- job_status calls these as its reader; they reveal only what pg_cron lets that role see. Where
    -- pg_cron lives in another database, the jobs are visible to roles that may read cron_conninfo.
    GRANT EXECUTE ON FUNCTION tally.cron_location() TO tally_admin;
    GRANT EXECUTE ON FUNCTION tally.cron_jobs(), tally.job_names() TO tally_admin;

    -- Cache revalidation consumers: the queued tags, nothing else (NOTIFY carries no tag).
    GRANT USAGE ON SCHEMA tally TO tally_consumer;
    GRANT EXECUTE ON FUNCTION tally.next_tags(integer), tally.ack_tags(bigint[]) TO tally_consumer;

    -- The pg_cron job role: exactly what the scheduled commands call, nothing to read.
    GRANT EXECUTE ON PROCEDURE tally.rollup_job() TO tally_job;
    GRANT EXECUTE ON FUNCTION tally.rollup(), tally.housekeeping() TO tally_job;
END
$$;

COMMENT ON FUNCTION tally.apply_grants() IS
'Revokes everything from PUBLIC and the tally roles, then grants the public surface. Runs after every migrate and '
'every rebuild of the registry views.';
