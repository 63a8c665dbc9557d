-- The field rules log_event and log_events share, as SQL the planner inlines into their queries.
-- No SET search_path, on purpose (a SET clause prevents inlining, and the helper is then planned on
-- every call); each body names only pg_catalog functions, schema-qualified.

CREATE OR REPLACE FUNCTION tally.address_bucket(given text, ip inet, ipv6_prefix integer)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- The address bucket abuse limits and the device identity key on: an IPv4 address, an IPv6 prefix
    -- (one host usually holds a whole /64), or, for a value given that is not an address (say a
    -- forwarded list '203.0.113.5, 10.0.0.1'), one shared bucket 'unparsable', so that garbage cannot
    -- open a limit. NULL only when no value was given. ip is tally.parse_ip(given).
    SELECT CASE
        WHEN given IS NULL THEN NULL
        WHEN ip IS NULL THEN 'unparsable'
        WHEN pg_catalog.family(ip) = 6 THEN pg_catalog.network(pg_catalog.set_masklen(ip, ipv6_prefix))::text
        ELSE pg_catalog.host(ip)
    END
$$;

COMMENT ON FUNCTION tally.address_bucket(text, inet, integer) IS
'The rate-limit and device bucket of an address: the IPv4 host, the IPv6 prefix, ''unparsable'' or NULL.';

CREATE OR REPLACE FUNCTION tally.clean_metadata(metadata jsonb, max_bytes integer)
RETURNS jsonb
LANGUAGE sql
-- STABLE as jsonb_build_object is: declared IMMUTABLE, it would never be inlined.
STABLE
PARALLEL SAFE
AS $$
    -- The event is still logged when its metadata is not an object or too large: a marker says why.
    SELECT CASE
        WHEN metadata IS NULL THEN NULL
        WHEN pg_catalog.jsonb_typeof(metadata) <> 'object'
            THEN pg_catalog.jsonb_build_object('_tally', 'metadata_dropped', 'reason', 'not_an_object')
        WHEN pg_catalog.octet_length(metadata::text) > max_bytes
            THEN pg_catalog.jsonb_build_object(
                '_tally', 'metadata_dropped', 'reason', 'too_large', 'bytes', pg_catalog.octet_length(metadata::text)
            )
        ELSE metadata
    END
$$;

COMMENT ON FUNCTION tally.clean_metadata(jsonb, integer) IS
'metadata as stored: the object itself, or a marker object when it is not an object or is over max_bytes.';

CREATE OR REPLACE FUNCTION tally.visitor_identity(user_id text, session_id text, ip_key text, user_agent text)
RETURNS text
LANGUAGE sql
-- STABLE as record_out is: declared IMMUTABLE, it would never be inlined.
STABLE
PARALLEL SAFE
AS $$
    -- The debounce identity: user, else session, else device (address bucket + user agent).
    SELECT CASE
        WHEN user_id IS NOT NULL THEN row('user', user_id)::text
        WHEN session_id IS NOT NULL THEN row('session', session_id)::text
        WHEN ip_key IS NOT NULL THEN row('device', ip_key, user_agent)::text
    END
$$;

COMMENT ON FUNCTION tally.visitor_identity(text, text, text, text) IS
'The debounce identity of an event (user, else session, else address bucket and user agent), before keying.';
