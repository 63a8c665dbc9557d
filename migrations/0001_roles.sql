-- Roles are cluster-wide while migrations run once per database: a cluster with many migrated
-- databases (one per test, say) reaches this file many times, so create each role only when it is
-- missing and tolerate a concurrent creator.
--   tally_owner  NOLOGIN; owns every tally object and the SECURITY DEFINER functions. Not a superuser.
--   tally_app    for applications: log_event, trending, counter views.
--   tally_admin  for operators: everything tally_app has, plus the admin views.
DO $roles$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['tally_owner', 'tally_app', 'tally_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it first
            END;
        END IF;
    END LOOP;
END
$roles$;

GRANT tally_app TO tally_admin;
