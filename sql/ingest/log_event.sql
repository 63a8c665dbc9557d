-- tally.rate_limited(), which counted a call's hits in a nested call, is now a statement of log_event.
DROP FUNCTION IF EXISTS tally.rate_limited(text, timestamptz, text, integer, text, integer);

CREATE OR REPLACE FUNCTION tally.log_event(
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
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Every statement here is a key lookup or a single-row write: a generic plan is always right, and
-- left to choose, the plan cache would re-plan the first query on every call (its custom plans fold
-- the clean-up of constant arguments and so always look cheaper), which costs more than running it.
SET plan_cache_mode = force_generic_plan
AS $$
/*
 * Records one engagement event in one round trip and says what became of it (tally.outcome).
 * SECURITY DEFINER (owner tally_owner) because callers may not touch tally.events or the side state.
 *
 * Caller bugs raise, with SQLSTATE and no echo of ip or user agent:
 *   22023  unknown kind or target type, or a NULL target_id
 *   22001  target_id, user_id or session_id longer than settings.identifier_max
 * One state of the database raises too: 55000 while it waits for tally.after_restore(), restored into
 * a cluster whose transaction ids are behind its own (tally.refuse_restored).
 * Everything else is an outcome, never an exception, so the caller's transaction carries on:
 *   duplicate -> discarded_bot -> rate_limited -> discarded_missing_target / discarded_not_visible ->
 *   debounced -> logged.
 * The checks that need no write come first, so a refused call leaves no side state behind (no
 * user agent, no event_id); the writes follow in the order rate limit, event_id claim, user agent,
 * debounce claim and event.
 *
 * A call that stores its event runs one read query, one rate-limit upsert, the host probe and one
 * statement that claims the debounce slot and inserts the event; no nested PL/pgSQL call but the
 * probe, which is the host-table boundary (tally_host.probe runs as tally_host_access). The rare
 * steps (a user agent not seen today, a missing salt, yesterday's slot near midnight, a refusal
 * counted in tally.discards) cost a statement more. The event row is vouched for (as log_events
 * vouches for its rows, see admit_event): the trigger does not probe and claim it a second time.
 *
 * Visitor keys: the debounce identity (user, else session, else device) is stored only as an
 * HMAC under the salt of the UTC day (tally.visitor_key, tally.visitor_salts), plus, for a window
 * that began before midnight, its key under yesterday's salt for the debounce check alone.
 *
 * Addresses: the stored ip is the normalised host address (tally.parse_ip); rate limits and the
 * device identity key on its bucket (IPv6 by settings.ipv6_prefix, and one shared bucket for values
 * that are not addresses, so that garbage fails closed), computed in the first query.
 *
 * Lock cycles: the writes wait on row locks that other open transactions may hold (a rate-limit
 * window, a debounce claim, an event_id). Two transactions that each call log_event more than once
 * can wait on each other; PostgreSQL's deadlock detector then fails one of the waits, and this
 * function catches that (subtransaction) and returns the fail-closed outcome of the step that
 * waited - rate_limited, duplicate or debounced - with nothing stored, instead of raising 40P01.
 */
#variable_conflict use_column
DECLARE
    v_kind text;
    v_ip_limit integer;
    v_user_limit integer;
    v_window timestamptz;
    v_ip_counter uuid;
    v_user_counter uuid;
    v_ip_over boolean;
    v_user_over boolean;
    v_debounce interval;
    v_known_type boolean;
    v_identifier_max integer;
    v_now timestamptz;
    v_ip inet;
    v_ip_key text;
    v_user_agent text;
    v_agent_id integer;
    v_agent_used date;
    v_referrer text;
    v_metadata jsonb;
    v_bot boolean;
    v_seen boolean;
    v_identity text;
    v_salted boolean;
    v_visitor uuid;
    v_previous uuid;
    v_target record;
    v_token text;
    v_step text;
    v_outcome tally.outcome;
    v_xid bigint;
    v_rolled_up_xmax bigint;
BEGIN
    -- Everything that needs no write is computed in this one query: each statement a PL/pgSQL function
    -- runs has a fixed cost (executor start-up), and this function sits on the application's hot path.
    SELECT
        k.kind,
        k.ip_limit,
        k.user_limit,
        date_bin(k.rate_window, c.now, timestamptz '2000-01-01 00:00:00+00'),
        -- The rate-limit counters this call adds to (NULL: no limit, or nothing to key on).
        CASE
            WHEN k.ip_limit IS NOT NULL AND c.ip_key IS NOT NULL THEN tally.rate_limit_key('ip:' || c.ip_key, k.kind)
        END,
        CASE
            WHEN k.user_limit IS NOT NULL AND log_event.user_id IS NOT NULL
                THEN tally.rate_limit_key('user:' || log_event.user_id, k.kind)
        END,
        k.debounce,
        EXISTS (SELECT 1 FROM tally.target_types AS t WHERE t.target_type = log_event.target_type),
        s.identifier_max,
        c.now,
        c.ip,
        c.ip_key,
        c.user_agent,
        tally.clean_text(log_event.referrer, s.referrer_max),
        tally.clean_metadata(log_event.metadata, s.metadata_max_bytes),
        a.id,
        a.last_used,
        -- A known user agent's cached verdict; a new one is classified here and stored only if the
        -- call is stored (COALESCE does not run the patterns when the verdict is known).
        coalesce(a.is_bot, EXISTS (SELECT 1 FROM tally.bot_patterns AS b WHERE c.user_agent ~* b.pattern)),
        EXISTS (SELECT 1 FROM tally.event_ids AS i WHERE i.event_id = log_event.event_id),
        v.identity,
        today.day IS NOT NULL,
        tally.visitor_key(today.inner_pad, today.outer_pad, v.identity),
        tally.visitor_key(yesterday.inner_pad, yesterday.outer_pad, v.identity),
        pg_current_xact_id()::text::bigint,
        s.rolled_up_xmax
    INTO v_kind, v_ip_limit, v_user_limit, v_window, v_ip_counter, v_user_counter, v_debounce, v_known_type,
        v_identifier_max, v_now, v_ip, v_ip_key, v_user_agent, v_referrer, v_metadata, v_agent_id, v_agent_used,
        v_bot, v_seen, v_identity, v_salted, v_visitor, v_previous, v_xid, v_rolled_up_xmax
    FROM tally.settings AS s
    CROSS JOIN LATERAL (
        SELECT
            CASE  -- tally.now(), without a second read of settings
                WHEN s.clock_override
                    THEN coalesce(nullif(current_setting('tally.clock', true), '')::timestamptz, now())
                ELSE now()
            END AS now,
            a.ip,
            -- See tally.address_bucket: a.ip is a column of the subquery below, not a call, so the
            -- helper is inlined (an argument that is a function call, used three times, is not).
            tally.address_bucket(log_event.ip, a.ip, s.ipv6_prefix) AS ip_key,
            tally.clean_text(log_event.user_agent, s.user_agent_max) AS user_agent
        FROM (SELECT tally.parse_ip(log_event.ip) AS ip OFFSET 0) AS a
        -- OFFSET 0 here and below: each value is computed once, not copied into every expression that
        -- uses it (a pulled-up subquery's expressions are substituted, and were evaluated up to four
        -- times: 30 us a call, measured).
        OFFSET 0
    ) AS c
    CROSS JOIN LATERAL (
        SELECT
            (c.now AT TIME ZONE 'UTC')::date AS day,
            tally.visitor_identity(log_event.user_id, log_event.session_id, c.ip_key, c.user_agent) AS identity
        OFFSET 0
    ) AS v
    LEFT JOIN tally.kinds AS k ON k.kind = log_event.kind
    -- The salts that key the identity: today's, and yesterday's while a debounce window that began
    -- yesterday may still be open (the kind's window after midnight).
    LEFT JOIN tally.visitor_salts AS today ON today.day = v.day
    LEFT JOIN tally.visitor_salts AS yesterday
        ON yesterday.day = v.day - 1 AND c.now < (v.day::timestamp AT TIME ZONE 'UTC') + k.debounce
    -- A probe of the hash index, whatever the planner believes about the other relations: as a plain
    -- join, an unanalysed one-row settings table (estimated at hundreds of rows) made the generic plan
    -- hash all of user_agents on every call (15x slower with 20,000 known user agents).
    LEFT JOIN LATERAL (
        SELECT u.id, u.last_used, u.is_bot FROM tally.user_agents AS u WHERE u.hash = md5(c.user_agent)::uuid LIMIT 1
    ) AS a ON true;

    -- Only a transaction that began before the last rollup's snapshot, or one in a database restored
    -- into a cluster whose ids are behind its own, needs the snapshot read (tally.refuse_restored).
    IF v_xid < v_rolled_up_xmax THEN
        PERFORM tally.refuse_restored(v_xid);
    END IF;
    IF v_kind IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = format('unknown event kind %s', coalesce(quote_literal(left(log_event.kind, 64)), 'NULL')),
            -- Named here: tally_app cannot read tally.kinds.
            HINT = format('accepted kinds: %s', (SELECT string_agg(k.kind, ', ' ORDER BY k.kind) FROM tally.kinds AS k));
    END IF;
    IF NOT v_known_type THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = format(
                'unknown target type %s', coalesce(quote_literal(left(log_event.target_type, 64)), 'NULL')
            ),
            HINT = 'register it with tally.register_target_type()';
    END IF;
    IF log_event.target_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'target_id must not be NULL';
    END IF;
    IF length(log_event.target_id) > v_identifier_max
        OR length(log_event.user_id) > v_identifier_max
        OR length(log_event.session_id) > v_identifier_max THEN
        RAISE EXCEPTION USING
            ERRCODE = '22001',
            MESSAGE = format('target_id, user_id and session_id are limited to %s characters', v_identifier_max);
    END IF;

    IF v_seen THEN
        v_outcome := 'duplicate';
    ELSIF v_bot THEN
        v_outcome := 'discarded_bot';
    END IF;

    IF v_outcome IS NULL THEN
        BEGIN
            v_step := 'rate_limit';
            IF v_ip_counter IS NOT NULL OR v_user_counter IS NOT NULL THEN
                -- Both counters in one statement, locked in key order as every caller locks them
                -- (log_events too): no lock cycle between calls.
                WITH counted AS (
                    INSERT INTO tally.rate_limit_state AS s (key, window_start, hits)
                    SELECT c.key, v_window, 1
                    FROM (VALUES (v_ip_counter), (v_user_counter)) AS c (key)
                    WHERE c.key IS NOT NULL
                    ORDER BY c.key
                    ON CONFLICT (key, window_start) DO UPDATE SET hits = s.hits + 1
                    RETURNING s.key, s.hits
                )
                SELECT
                    coalesce(bool_or(c.key = v_ip_counter AND c.hits > v_ip_limit), false),
                    coalesce(bool_or(c.key = v_user_counter AND c.hits > v_user_limit), false)
                INTO v_ip_over, v_user_over
                FROM counted AS c;
                IF v_ip_over OR v_user_over THEN
                    -- Per key, for the admin view: 'ip:ADDRESS', 'ip:PREFIX/64', 'ip:unparsable' or 'user:ID'.
                    INSERT INTO tally.rate_limit_rejections AS r (window_start, key, kind, rejected)
                    SELECT v_window, o.key, v_kind, 1
                    FROM (
                        VALUES (v_ip_over, 'ip:' || v_ip_key), (v_user_over, 'user:' || log_event.user_id)
                    ) AS o (over, key)
                    WHERE o.over
                    ORDER BY o.key COLLATE "C"
                    ON CONFLICT (window_start, key, kind) DO UPDATE SET rejected = r.rejected + 1;
                    v_outcome := 'rate_limited';
                END IF;
            END IF;

            IF v_outcome IS NULL AND log_event.event_id IS NOT NULL THEN
                -- Claimed only now: a concurrent retry that got here first makes this one a duplicate.
                v_step := 'event_id';
                INSERT INTO tally.event_ids AS i (event_id, seen_at) VALUES (log_event.event_id, v_now)
                ON CONFLICT (event_id) DO NOTHING;
                IF NOT FOUND THEN
                    v_outcome := 'duplicate';
                END IF;
            END IF;

            IF v_outcome IS NULL THEN
                v_step := 'store';
                -- A user agent not seen today: record it (a new one gets its bot verdict stored, once).
                IF v_user_agent IS NOT NULL
                    AND (v_agent_id IS NULL OR v_agent_used < (v_now AT TIME ZONE 'UTC')::date) THEN
                    SELECT r.id INTO v_agent_id
                    FROM tally.remember_user_agent(v_user_agent, (v_now AT TIME ZONE 'UTC')::date) AS r;
                END IF;
                -- Salts are made ahead (tally.prepare_salts); only when no job has run for days does a
                -- call create its day's salt, and concurrent first calls then wait for its transaction.
                IF v_identity IS NOT NULL AND NOT v_salted THEN
                    SELECT tally.visitor_key(s.inner_pad, s.outer_pad, v_identity) INTO v_visitor
                    FROM tally.visitor_salt((v_now AT TIME ZONE 'UTC')::date) AS s;
                END IF;
                -- The target must exist and be visible to the user; its key is stored canonical ('043'
                -- -> '43' for a numeric key), so that every count and guard keys on one spelling. An
                -- assignment: a simple expression skips the executor a SELECT would start.
                v_target := tally_host.probe(log_event.target_type, log_event.target_id, log_event.user_id);
                IF v_target.canonical_id IS NULL THEN
                    v_outcome := 'discarded_missing_target';
                ELSIF NOT v_target.visible THEN
                    v_outcome := 'discarded_not_visible';
                ELSIF v_previous IS NOT NULL THEN
                    -- Near midnight, yesterday's slot of the same identity first (claim_visit's order).
                    INSERT INTO tally.debounce AS d (key, last_at)
                    VALUES (tally.debounce_key(log_event.target_type, v_target.canonical_id, v_kind, v_previous), v_now)
                    ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
                    WHERE d.last_at <= excluded.last_at - v_debounce;
                    IF NOT FOUND THEN
                        v_outcome := 'debounced';
                    END IF;
                END IF;
            END IF;

            IF v_outcome IS NULL THEN
                -- One statement claims today's debounce slot (as tally.claim_visit does: the ON CONFLICT
                -- condition queues concurrent claims, so exactly one is admitted, and a created slot is
                -- a first visit) and stores the event only if the claim was admitted. The token vouches
                -- for the row to the admit_event trigger; it is set only while this statement runs,
                -- after the host probe, so no host code can learn it (set by assignments, not PERFORM:
                -- a simple expression skips the executor a PERFORM starts).
                v_token := set_config('tally.voucher', gen_random_uuid()::text, true);
                WITH claimed AS (
                    INSERT INTO tally.debounce AS d (key, last_at)
                    SELECT tally.debounce_key(log_event.target_type, v_target.canonical_id, v_kind, v_visitor), v_now
                    WHERE v_visitor IS NOT NULL AND v_debounce > interval '0'
                    ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
                    WHERE d.last_at <= excluded.last_at - v_debounce
                    RETURNING d.xmax = 0 AS created
                )
                INSERT INTO tally.events (
                    created_at, target_type, target_id, kind, user_id, visitor, ip, user_agent_id, referrer,
                    metadata, first_visit, vouched
                )
                SELECT
                    v_now, log_event.target_type, v_target.canonical_id, v_kind, log_event.user_id, v_visitor,
                    v_ip, v_agent_id, v_referrer, v_metadata, nullif((SELECT c.created FROM claimed AS c), false),
                    v_token::uuid
                WHERE v_visitor IS NULL OR v_debounce = interval '0' OR EXISTS (SELECT 1 FROM claimed);
                IF NOT FOUND THEN
                    v_outcome := 'debounced';
                END IF;
                v_token := set_config('tally.voucher', '', true);
                IF v_outcome IS NULL THEN
                    RETURN 'logged';
                END IF;
            END IF;
        EXCEPTION WHEN deadlock_detected THEN
            v_outcome := CASE v_step
                WHEN 'rate_limit' THEN 'rate_limited'
                WHEN 'event_id' THEN 'duplicate'
                ELSE 'debounced'
            END;
        END;
    END IF;

    PERFORM tally.count_discard(v_now, log_event.target_type, v_kind, v_outcome);
    RETURN v_outcome;
END
$$;

COMMENT ON FUNCTION tally.log_event(text, text, text, text, text, text, text, text, jsonb, uuid) IS
'Records an engagement event; returns logged, debounced, rate_limited, duplicate or discarded_* (see tally.outcome). '
'Raises 22023 for an unknown kind or target type, 22001 for over-long identifiers and 55000 until '
'tally.after_restore() has run in a database restored into a cluster that is behind.';
