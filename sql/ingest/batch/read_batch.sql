CREATE OR REPLACE FUNCTION tally.read_batch(events jsonb, now timestamptz)
RETURNS TABLE (
    ord integer,
    error text,
    message text,
    has_at boolean,
    target_type text,
    target_id text,
    kind text,
    user_id text,
    ip inet,
    ip_key text,
    user_agent text,
    agent_id integer,
    agent_used date,
    bot boolean,
    referrer text,
    metadata jsonb,
    event_id uuid,
    seen boolean,
    identity text,
    visitor uuid,
    previous uuid,
    rate_window timestamptz,
    ip_hash uuid,
    user_hash uuid,
    ip_limit integer,
    user_limit integer,
    debounce interval
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 1 of log_events: every element's fields as log_event's first query computes them (the same
 * helpers: clean_text, parse_ip, address_bucket, clean_metadata, visitor_identity, visitor_key,
 * rate_limit_key), in one query, with no write. An element log_event would refuse gets the SQLSTATE
 * and message it would raise, checked in the same order, after the batch's own shape rules: an
 * element is a JSON object whose keys are log_event's parameter names (or 'at'), with strings or
 * numbers for text and null for absent; metadata may be any JSON value.
 */
#variable_conflict use_column
DECLARE
    v_day date := (read_batch.now AT TIME ZONE 'UTC')::date;
    v_keys constant text [] := ARRAY[
        'target_type', 'target_id', 'kind', 'user_id', 'session_id', 'ip', 'user_agent', 'referrer', 'metadata',
        'event_id', 'at'
    ];
    -- What uuid_in accepts: 32 hex digits, a hyphen allowed after any group of four, optional braces.
    v_uuid constant text := '^([0-9a-f]{4}(-?[0-9a-f]{4}){7}|\{[0-9a-f]{4}(-?[0-9a-f]{4}){7}\})$';
BEGIN
    RETURN QUERY
    SELECT
        f.ord,
        p.problem[1],
        p.problem[2],
        f.has_at,
        f.target_type,
        f.target_id,
        k.kind,
        f.user_id,
        f.ip,
        c.ip_key,
        c.user_agent,
        a.id,
        a.last_used,
        coalesce(a.is_bot, EXISTS (SELECT 1 FROM tally.bot_patterns AS b WHERE c.user_agent ~* b.pattern)),
        tally.clean_text(f.referrer, s.referrer_max),
        tally.clean_metadata(f.metadata, s.metadata_max_bytes),
        f.event_id,
        EXISTS (SELECT 1 FROM tally.event_ids AS i WHERE i.event_id = f.event_id),
        v.identity,
        tally.visitor_key(salt.today_inner, salt.today_outer, v.identity),
        -- Yesterday's key while a debounce window that began yesterday may still be open.
        CASE WHEN read_batch.now < (v_day::timestamp AT TIME ZONE 'UTC') + k.debounce
            THEN tally.visitor_key(salt.yesterday_inner, salt.yesterday_outer, v.identity)
        END,
        date_bin(k.rate_window, read_batch.now, timestamptz '2000-01-01 00:00:00+00'),
        CASE WHEN c.ip_key IS NOT NULL AND k.ip_limit IS NOT NULL
            THEN tally.rate_limit_key('ip:' || c.ip_key, k.kind)
        END,
        CASE WHEN f.user_id IS NOT NULL AND k.user_limit IS NOT NULL
            THEN tally.rate_limit_key('user:' || f.user_id, k.kind)
        END,
        k.ip_limit,
        k.user_limit,
        k.debounce
    FROM (
        SELECT
            e.ord::integer AS ord,
            e.shape,
            e.v ? 'at' AS has_at,
            e.v ->> 'target_type' AS target_type,
            e.v ->> 'target_id' AS target_id,
            e.v ->> 'kind' AS kind,
            e.v ->> 'user_id' AS user_id,
            e.v ->> 'session_id' AS session_id,
            e.v ->> 'ip' AS ip_given,
            tally.parse_ip(e.v ->> 'ip') AS ip,
            e.v ->> 'user_agent' AS user_agent,
            e.v ->> 'referrer' AS referrer,
            nullif(e.v -> 'metadata', 'null'::jsonb) AS metadata,
            e.v ->> 'event_id' AS event_id_given,
            CASE WHEN e.v ->> 'event_id' ~* v_uuid THEN (e.v ->> 'event_id')::uuid END AS event_id
        FROM (
            SELECT
                x.v,
                x.ord,
                CASE
                    WHEN jsonb_typeof(x.v) <> 'object' THEN 'element is not a JSON object'
                    ELSE (
                        SELECT
                            CASE WHEN j.key <> ALL (v_keys)
                                THEN format('unknown key %s', quote_literal(left(j.key, 64)))
                                ELSE format('%s must be a string or a number', j.key)
                            END
                        FROM jsonb_each(x.v) AS j (key, value)
                        WHERE j.key <> ALL (v_keys)
                            OR (j.key <> 'metadata' AND jsonb_typeof(j.value) NOT IN ('string', 'number', 'null'))
                        ORDER BY j.key
                        LIMIT 1
                    )
                END AS shape
            FROM jsonb_array_elements(read_batch.events) WITH ORDINALITY AS x (v, ord)
        ) AS e
        OFFSET 0  -- parse_ip once per element
    ) AS f
    CROSS JOIN tally.settings AS s
    CROSS JOIN (
        SELECT
            (SELECT t.inner_pad FROM tally.visitor_salts AS t WHERE t.day = v_day) AS today_inner,
            (SELECT t.outer_pad FROM tally.visitor_salts AS t WHERE t.day = v_day) AS today_outer,
            (SELECT t.inner_pad FROM tally.visitor_salts AS t WHERE t.day = v_day - 1) AS yesterday_inner,
            (SELECT t.outer_pad FROM tally.visitor_salts AS t WHERE t.day = v_day - 1) AS yesterday_outer
    ) AS salt
    CROSS JOIN LATERAL (
        SELECT
            tally.address_bucket(f.ip_given, f.ip, s.ipv6_prefix) AS ip_key,
            tally.clean_text(f.user_agent, s.user_agent_max) AS user_agent
    ) AS c
    CROSS JOIN LATERAL (
        SELECT tally.visitor_identity(f.user_id, f.session_id, c.ip_key, c.user_agent) AS identity
    ) AS v
    LEFT JOIN tally.kinds AS k ON k.kind = f.kind
    LEFT JOIN LATERAL (
        SELECT u.id, u.last_used, u.is_bot FROM tally.user_agents AS u WHERE u.hash = md5(c.user_agent)::uuid LIMIT 1
    ) AS a ON true
    -- The first problem, in log_event's order: [SQLSTATE, message]. No value of ip or user agent.
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN f.shape IS NOT NULL THEN ARRAY['22023', f.shape]
            WHEN f.event_id_given IS NOT NULL AND f.event_id IS NULL THEN ARRAY['22P02', 'event_id is not a uuid']
            WHEN f.has_at AND NOT s.clock_override
                THEN ARRAY['22023', 'at is accepted only while settings.clock_override is on']
            WHEN k.kind IS NULL
                THEN ARRAY['22023', format('unknown event kind %s', coalesce(quote_literal(left(f.kind, 64)), 'NULL'))]
            WHEN NOT EXISTS (SELECT 1 FROM tally.target_types AS t WHERE t.target_type = f.target_type)
                THEN ARRAY[
                    '22023', format('unknown target type %s', coalesce(quote_literal(left(f.target_type, 64)), 'NULL'))
                ]
            WHEN f.target_id IS NULL THEN ARRAY['22023', 'target_id must not be NULL']
            WHEN length(f.target_id) > s.identifier_max
                OR length(f.user_id) > s.identifier_max
                OR length(f.session_id) > s.identifier_max
                THEN ARRAY[
                    '22001',
                    format('target_id, user_id and session_id are limited to %s characters', s.identifier_max)
                ]
        END AS problem
    ) AS p;
END
$$;

COMMENT ON FUNCTION tally.read_batch(jsonb, timestamptz) IS
'Step 1 of log_events: each element''s cleaned fields, guard keys and the error log_event would raise, if any.';
