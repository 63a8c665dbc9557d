-- tally:superuser (creates a function in schema public, which tally_owner may not write to)
-- log_events() unqualified for applications, as public.log_event is for log_event(): SECURITY
-- INVOKER (a caller still needs EXECUTE on tally.log_events, granted to tally_app). No SET
-- search_path: its one statement names only tally.log_events. (A set-returning function that writes
-- is never inlined, unlike public.log_event: one extra function call per batch.)
CREATE OR REPLACE FUNCTION public.log_events(events jsonb)
RETURNS TABLE (ord integer, outcome tally.outcome, error text, message text)
LANGUAGE sql
VOLATILE
AS $$
    SELECT * FROM tally.log_events(events)
$$;

COMMENT ON FUNCTION public.log_events(jsonb) IS
'Forwards to tally.log_events so that applications can call log_events(...) unqualified.';

REVOKE ALL ON FUNCTION public.log_events(jsonb) FROM public;
GRANT EXECUTE ON FUNCTION public.log_events(jsonb) TO tally_app;
