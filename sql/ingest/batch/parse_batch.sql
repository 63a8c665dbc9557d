CREATE OR REPLACE FUNCTION tally.parse_batch(
    events jsonb,
    now timestamptz,
    OUT items tally.ingest_item[],
    OUT state tally.ingest_state[],
    OUT has_at boolean,
    OUT limited boolean
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 1 of log_events: every element's fields as log_event's first query computes them (the same
 * helpers: clean_text, parse_ip, address_bucket, clean_metadata, visitor_identity, visitor_key,
 * rate_limit_key), in one query, with no write, as the batch's items; and its first state: until
 * the rate limits say otherwise, the first element of each event_id reaches them and the later ones
 * are its duplicates. has_at: an element carries 'at'; limited: some element is subject to a limit.
 * An element log_event would refuse gets the SQLSTATE and message it would raise, checked in the same
 * order, after the batch's own shape rules: an element is a JSON object whose keys are log_event's
 * parameter names (or 'at'), with strings or numbers for text and null for absent; metadata may be any
 * JSON value.
 */
#variable_conflict use_column
DECLARE
    v_day date := (parse_batch.now AT TIME ZONE 'UTC')::date;
    v_keys constant text [] := ARRAY[
        'target_type', 'target_id', 'kind', 'user_id', 'session_id', 'ip', 'user_agent', 'referrer', 'metadata',
        'event_id', 'at'
    ];
    -- What uuid_in accepts: 32 hex digits, a hyphen allowed after any group of four, optional braces.
    v_uuid constant text := '^([0-9a-f]{4}(-?[0-9a-f]{4}){7}|\{[0-9a-f]{4}(-?[0-9a-f]{4}){7}\})$';
BEGIN
    SELECT
        array_agg(
            row(
                x.ord, x.error, x.message, parse_batch.now, x.target_type, x.target_id, x.kind, x.user_id, x.ip,
                x.ip_key, x.user_agent, x.agent_id, x.agent_used, x.bot, x.referrer, x.metadata, x.event_id, x.seen,
                x.identity, x.visitor, x.previous, x.rate_window, x.ip_hash, x.user_hash, x.ip_limit,
                x.user_limit, x.debounce
            )::tally.ingest_item
            ORDER BY x.ord
        ),
        array_agg(
            row(
                CASE
                    WHEN x.error IS NOT NULL THEN NULL
                    WHEN x.seen THEN 'duplicate'
                    WHEN x.earlier_claims THEN 'duplicate'
                    WHEN x.bot THEN 'discarded_bot'
                END,
                x.error IS NULL AND NOT x.seen AND NOT x.earlier_claims AND NOT x.bot,
                false, false, NULL, x.agent_id, x.visitor, NULL
            )::tally.ingest_state
            ORDER BY x.ord
        ),
        coalesce(bool_or(x.has_at), false),
        coalesce(bool_or(
            x.error IS NULL AND NOT x.seen AND NOT x.bot AND (x.ip_hash IS NOT NULL OR x.user_hash IS NOT NULL)
        ), false)
    INTO items, state, has_at, limited
    FROM (
        SELECT
            r.*,
            coalesce(
                count(*) FILTER (WHERE r.error IS NULL AND NOT r.seen AND NOT r.bot) OVER (
                    PARTITION BY r.event_id, CASE WHEN r.event_id IS NULL THEN r.ord END
                    ORDER BY r.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                ) > 0,
                false
            ) AS earlier_claims
        FROM (
            SELECT
                f.ord,
                p.problem[1] AS error,
                p.problem[2] AS message,
                f.has_at,
                f.target_type,
                f.target_id,
                k.kind,
                f.user_id,
                f.ip,
                c.ip_key,
                c.user_agent,
                a.id AS agent_id,
                a.last_used AS agent_used,
                coalesce(a.is_bot, EXISTS (SELECT 1 FROM tally.bot_patterns AS b WHERE c.user_agent ~* b.pattern)) AS bot,
                tally.clean_text(f.referrer, s.referrer_max) AS referrer,
                tally.clean_metadata(f.metadata, s.metadata_max_bytes) AS metadata,
                f.event_id,
                coalesce(seen.seen, false) AS seen,
                v.identity,
                tally.visitor_key(salt.today_inner, salt.today_outer, v.identity) AS visitor,
                -- Yesterday's key while a debounce window that began yesterday may still be open.
                CASE WHEN parse_batch.now < (v_day::timestamp AT TIME ZONE 'UTC') + k.debounce
                    THEN tally.visitor_key(salt.yesterday_inner, salt.yesterday_outer, v.identity)
                END AS previous,
                date_bin(k.rate_window, parse_batch.now, timestamptz '2000-01-01 00:00:00+00') AS rate_window,
                CASE WHEN c.ip_key IS NOT NULL AND k.ip_limit IS NOT NULL
                    THEN tally.rate_limit_key('ip:' || c.ip_key, k.kind)
                END AS ip_hash,
                CASE WHEN f.user_id IS NOT NULL AND k.user_limit IS NOT NULL
                    THEN tally.rate_limit_key('user:' || f.user_id, k.kind)
                END AS user_hash,
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
                            -- Cheap tests first (most elements pass both); the slow search names the culprit.
                            WHEN x.v - v_keys <> '{}'::jsonb
                                THEN (
                                    SELECT format('unknown key %s', quote_literal(left(min(k.key), 64)))
                                    FROM jsonb_object_keys(x.v - v_keys) AS k (key)
                                )
                            WHEN jsonb_typeof(x.v -> 'target_type') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'target_id') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'kind') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'user_id') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'session_id') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'ip') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'user_agent') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'referrer') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'event_id') IN ('object', 'array', 'boolean')
                                OR jsonb_typeof(x.v -> 'at') IN ('object', 'array', 'boolean')
                                THEN (
                                    SELECT format('%s must be a string or a number', min(j.key))
                                    FROM jsonb_each(x.v) AS j (key, value)
                                    WHERE j.key <> 'metadata' AND jsonb_typeof(j.value) IN ('object', 'array', 'boolean')
                                )
                        END AS shape
                    FROM jsonb_array_elements(parse_batch.events) WITH ORDINALITY AS x (v, ord)
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
                -- OFFSET 0 here and below: each value once per element. A pulled-up subquery's expressions
                -- are copied into every use (the user agent was cleaned four times per element).
                OFFSET 0
            ) AS c
            CROSS JOIN LATERAL (
                SELECT tally.visitor_identity(f.user_id, f.session_id, c.ip_key, c.user_agent) AS identity
                OFFSET 0
            ) AS v
            LEFT JOIN tally.kinds AS k ON k.kind = f.kind
            LEFT JOIN tally.target_types AS tt ON tt.target_type = f.target_type
            -- Index probes, whatever the statistics say: as EXISTS, the planner hashed all of event_ids once
            -- per batch (a day of retries) when it guessed that cheaper than a probe per element.
            LEFT JOIN LATERAL (
                SELECT u.id, u.last_used, u.is_bot FROM tally.user_agents AS u WHERE u.hash = md5(c.user_agent)::uuid LIMIT 1
            ) AS a ON true
            LEFT JOIN LATERAL (
                SELECT true AS seen FROM tally.event_ids AS i WHERE i.event_id = f.event_id LIMIT 1
            ) AS seen ON true
            -- The first problem, in log_event's order: [SQLSTATE, message]. No value of ip or user agent.
            CROSS JOIN LATERAL (
                SELECT CASE
                    WHEN f.shape IS NOT NULL THEN ARRAY['22023', f.shape]
                    WHEN f.event_id_given IS NOT NULL AND f.event_id IS NULL THEN ARRAY['22P02', 'event_id is not a uuid']
                    WHEN f.has_at AND NOT s.clock_override
                        THEN ARRAY['22023', 'at is accepted only while settings.clock_override is on']
                    WHEN k.kind IS NULL
                        THEN ARRAY['22023', format('unknown event kind %s', coalesce(quote_literal(left(f.kind, 64)), 'NULL'))]
                    WHEN tt.target_type IS NULL
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
            ) AS p
        ) AS r
    ) AS x;
END
$$;

COMMENT ON FUNCTION tally.parse_batch(jsonb, timestamptz) IS
'Step 1 of log_events: each element''s cleaned fields, guard keys and the error log_event would raise, if any; '
'the batch''s first state.';
