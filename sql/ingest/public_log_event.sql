-- tally:superuser (creates a function in schema public, which tally_owner may not write to)
-- Applications call log_event() unqualified under the default search_path ("$user", public): this
-- thin wrapper in public forwards to tally.log_event. It is SECURITY INVOKER, so a caller still
-- needs EXECUTE on tally.log_event (granted to tally_app); PUBLIC has no EXECUTE on either.
-- No SET search_path, on purpose: without it the planner inlines the wrapper into the caller's query,
-- so the unqualified call costs what the qualified one does. Its body is one schema-qualified call.
CREATE OR REPLACE FUNCTION public.log_event(
    target_type text,
    target_id text,
    kind text,
    user_id text DEFAULT null,
    session_id text DEFAULT null,
    ip text DEFAULT null,
    user_agent text DEFAULT null,
    referrer text DEFAULT null,
    metadata jsonb DEFAULT null,
    event_id uuid DEFAULT null
)
RETURNS tally.outcome
LANGUAGE sql
VOLATILE
AS $$
    SELECT tally.log_event(
        target_type, target_id, kind, user_id, session_id, ip, user_agent, referrer, metadata, event_id
    )
$$;

COMMENT ON FUNCTION public.log_event(text, text, text, text, text, text, text, text, jsonb, uuid) IS
'Forwards to tally.log_event so that applications can call log_event(...) unqualified.';

REVOKE ALL ON FUNCTION public.log_event(text, text, text, text, text, text, text, text, jsonb, uuid) FROM public;
GRANT EXECUTE ON FUNCTION public.log_event(text, text, text, text, text, text, text, text, jsonb, uuid) TO tally_app;
